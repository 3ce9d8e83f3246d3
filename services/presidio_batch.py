"""Presidio for bulk redaction (ingestion): spaCy runs texts through ``nlp.pipe`` in batches,
with only the pipeline components Presidio reads.

Presidio uses the NER entities, and token lemmas for its context words (the lemmatizer needs the
tagger and attribute ruler). The dependency parser feeds neither and is the costliest component
of the small English model, so it is disabled. Fails closed like ``PresidioRedactor``: any
analyzer error raises ``RedactorUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.errors import RedactorUnavailableError
from services.presidio_redactor import PresidioRedactor, apply_spans
from services.records import EntitySpan, Redaction

UNUSED_COMPONENTS = ("parser",)


class BatchPresidioRedactor(PresidioRedactor):
    """``redact_many`` analyses a list of texts with one batched spaCy pass."""

    def __init__(
        self,
        *,
        spacy_model: str,
        entities: Sequence[str],
        language: str = "en",
        score_threshold: float = 0.5,
        timeout_s: float = 10.0,
        pipe_batch_size: int = 32,
    ) -> None:
        super().__init__(
            spacy_model=spacy_model,
            entities=entities,
            language=language,
            score_threshold=score_threshold,
            timeout_s=timeout_s,
        )
        self._pipe_batch_size = pipe_batch_size

    def warm_up(self) -> None:
        first = self._analyzer is None
        super().warm_up()
        if first:
            for nlp in self._analyzer.nlp_engine.nlp.values():
                for name in UNUSED_COMPONENTS:
                    if name in nlp.pipe_names:
                        nlp.disable_pipe(name)

    def redact_many(self, texts: Sequence[str]) -> list[Redaction]:
        self.warm_up()
        wanted = [i for i, t in enumerate(texts) if t.strip()]
        out = [Redaction(text=t) for t in texts]
        try:
            batch = self._analyzer.nlp_engine.process_batch(
                [texts[i] for i in wanted], self._language, batch_size=self._pipe_batch_size
            )
            for i, (text, artifacts) in zip(wanted, batch, strict=True):
                results = self._analyzer.analyze(
                    text=text,
                    language=self._language,
                    entities=self._entities,
                    score_threshold=self._score_threshold,
                    nlp_artifacts=artifacts,
                )
                spans = [EntitySpan(r.start, r.end, r.entity_type) for r in results]
                if spans:
                    out[i] = apply_spans(text, spans)
        except Exception as exc:  # fail closed on any analyzer error
            raise RedactorUnavailableError(f"PII analysis failed: {type(exc).__name__}") from exc
        return out
