"""PII redaction with Presidio on an installed spaCy model (its default would download one)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from services.errors import RedactorUnavailableError
from services.records import Redaction


class PresidioRedactor:
    """Replaces each detected entity with ``<ENTITY_TYPE>``; reports counts, never values."""

    def __init__(
        self,
        *,
        spacy_model: str,
        entities: Sequence[str],
        language: str = "en",
        score_threshold: float = 0.5,
    ) -> None:
        self._spacy_model = spacy_model
        self._entities = list(entities)
        self._language = language
        self._score_threshold = score_threshold
        self._analyzer: Any = None
        self._anonymizer: Any = None

    def warm_up(self) -> None:
        if self._analyzer is not None:
            return
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine

        try:
            nlp_engine = NlpEngineProvider(
                nlp_configuration={
                    "nlp_engine_name": "spacy",
                    "models": [{"lang_code": self._language, "model_name": self._spacy_model}],
                }
            ).create_engine()
        except (OSError, ValueError) as exc:
            raise RedactorUnavailableError(
                f"spaCy model {self._spacy_model!r} is not installed"
            ) from exc
        self._analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[self._language])
        self._anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]

    def redact(self, text: str) -> Redaction:
        if not text.strip():
            return Redaction(text=text)
        if self._analyzer is None:
            self.warm_up()
        results = self._analyzer.analyze(
            text=text,
            language=self._language,
            entities=self._entities,
            score_threshold=self._score_threshold,
        )
        if not results:
            return Redaction(text=text)
        anonymized = self._anonymizer.anonymize(text=text, analyzer_results=results)
        counts = Counter(item.entity_type for item in anonymized.items)
        return Redaction(text=anonymized.text, counts=dict(counts))
