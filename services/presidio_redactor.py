"""PII redaction with Presidio on an installed spaCy model (its default would download one).

Fails closed: an analyzer that cannot load, errors or exceeds its time budget raises
``RedactorUnavailableError``; callers refuse the request rather than pass text through unredacted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from services.errors import RedactorUnavailableError
from services.records import EntitySpan, Redaction


def _without_overlaps(spans: list[EntitySpan]) -> list[EntitySpan]:
    """Keep the earliest, then longest, of overlapping spans."""
    kept: list[EntitySpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if kept and span.start < kept[-1].end:
            continue
        kept.append(span)
    return kept


def apply_spans(text: str, spans: Sequence[EntitySpan]) -> Redaction:
    """Replace each span with ``<ENTITY_TYPE>``; pure, so streaming can reuse it on a prefix."""
    out: list[str] = []
    counts: Counter[str] = Counter()
    cursor = 0
    for span in _without_overlaps(list(spans)):
        out.append(text[cursor : span.start])
        out.append(f"<{span.entity_type}>")
        counts[span.entity_type] += 1
        cursor = span.end
    out.append(text[cursor:])
    return Redaction(text="".join(out), counts=dict(counts))


class PresidioRedactor:
    """Finds PII with Presidio's analyzer; reports positions and counts, never values."""

    def __init__(
        self,
        *,
        spacy_model: str,
        entities: Sequence[str],
        language: str = "en",
        score_threshold: float = 0.5,
        timeout_s: float = 10.0,
    ) -> None:
        self._spacy_model = spacy_model
        self._entities = list(entities)
        self._language = language
        self._score_threshold = score_threshold
        self._timeout_s = timeout_s
        self._analyzer: Any = None
        self._pool: ThreadPoolExecutor | None = None

    def warm_up(self) -> None:
        if self._analyzer is not None:
            return
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        try:
            nlp_engine = NlpEngineProvider(
                nlp_configuration={
                    "nlp_engine_name": "spacy",
                    "models": [{"lang_code": self._language, "model_name": self._spacy_model}],
                }
            ).create_engine()
        except Exception as exc:  # a missing or broken model: the redactor is unusable
            raise RedactorUnavailableError(
                f"spaCy model {self._spacy_model!r} cannot be loaded"
            ) from exc
        self._analyzer = AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=[self._language])
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="presidio")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def health(self) -> bool:
        return self._analyzer is not None

    def _analyze(self, text: str) -> list[EntitySpan]:
        results = self._analyzer.analyze(
            text=text,
            language=self._language,
            entities=self._entities,
            score_threshold=self._score_threshold,
        )
        return [EntitySpan(r.start, r.end, r.entity_type) for r in results]

    def find(self, text: str) -> list[EntitySpan]:
        if not text.strip():
            return []
        self.warm_up()
        assert self._pool is not None
        try:
            return self._pool.submit(self._analyze, text).result(timeout=self._timeout_s)
        except FutureTimeout as exc:
            raise RedactorUnavailableError(
                f"PII analysis took longer than {self._timeout_s:.0f}s"
            ) from exc
        except Exception as exc:  # fail closed on any analyzer error
            raise RedactorUnavailableError(f"PII analysis failed: {type(exc).__name__}") from exc

    def redact(self, text: str) -> Redaction:
        spans = self.find(text)
        return apply_spans(text, spans) if spans else Redaction(text=text)
