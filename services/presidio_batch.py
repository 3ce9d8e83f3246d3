"""Presidio for bulk redaction (ingestion): spaCy runs texts through ``nlp.pipe`` in batches,
with only the pipeline components the profile needs.

Names need spaCy's NER (``tok2vec`` + ``ner``); the tagger, parser, attribute ruler and
lemmatizer feed none of Holdfast's rules and are skipped. A profile without names (``structured``)
runs only the tokenizer. Fails closed like ``PresidioRedactor``: any analyzer error raises
``RedactorUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.errors import RedactorUnavailableError
from services.presidio_redactor import PresidioRedactor
from services.records import EntitySpan, Redaction
from services.redaction_placeholders import Placeholders, anonymize
from services.redaction_profile import SUPPORTED_ENTITIES, RedactionProfile


class BatchPresidioRedactor(PresidioRedactor):
    """``find_many`` / ``redact_many`` analyse a list of texts with one batched spaCy pass."""

    def __init__(
        self,
        *,
        spacy_model: str,
        entities: Sequence[str] = SUPPORTED_ENTITIES,
        language: str = "en",
        timeout_s: float = 10.0,
        pipe_batch_size: int = 32,
        profile: RedactionProfile = RedactionProfile.STRICT,
    ) -> None:
        super().__init__(
            spacy_model=spacy_model,
            entities=entities,
            language=language,
            timeout_s=timeout_s,
            profile=profile,
        )
        self._pipe_batch_size = pipe_batch_size

    def find_many(
        self, texts: Sequence[str], *, profile: RedactionProfile | None = None
    ) -> list[list[EntitySpan]]:
        """The spans of each text (offsets and types only)."""
        self.warm_up()
        try:
            return self._find_many(texts, profile, self._pipe_batch_size)
        except Exception as exc:  # fail closed on any analyzer error
            raise RedactorUnavailableError(f"PII analysis failed: {type(exc).__name__}") from exc

    def redact_many(
        self, texts: Sequence[str], *, profile: RedactionProfile | None = None
    ) -> list[Redaction]:
        """Each text redacted on its own (numbering restarts per text; ingestion numbers per
        document with ``find_many`` and ``ingestion.redaction``)."""
        found = self.find_many(texts, profile=profile)
        return [
            anonymize(text, spans, Placeholders()) if spans else Redaction(text=text)
            for text, spans in zip(texts, found, strict=True)
        ]
