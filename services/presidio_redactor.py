"""PII redaction with Presidio on an installed spaCy model (its default would download one).

Presidio finds (``redaction_engine``: Holdfast's recognizers, rules and second opinion on names)
and presidio-anonymizer replaces (``redaction_placeholders``). What is replaced depends on the
profile (``RedactionProfile``), given per call or as the instance's default.

Fails closed: an analyzer that cannot load, errors or exceeds its time budget raises
``RedactorUnavailableError``; callers refuse the request rather than pass text through unredacted.

Where the analysis runs: a text of up to ``inline_chars`` characters (a question, a window of a
streamed answer) in the caller's own thread, anything longer on a two-thread pool that the
caller waits on for at most ``timeout_s``. Handing a question to the pool and back cost two
thread switches, and under load each switch waits for the GIL: with one busy Python thread
beside it, 11.5 ms at the median for an analysis of 0.47 ms. A short text's analysis is bounded
by its length (linear patterns over 2,000 characters, spaCy's tokenizer); errors fail closed
the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from services.errors import RedactorUnavailableError
from services.pii_fold import FoldedText, fold
from services.records import EntitySpan, Redaction
from services.redaction_placeholders import Placeholders, anonymize, apply_spans
from services.redaction_profile import PERSON, SUPPORTED_ENTITIES, RedactionProfile

__all__ = ["NER_COMPONENTS", "PresidioRedactor", "apply_spans"]  # apply_spans: moved, kept here

# spaCy components each profile needs: NER for names; for the others only the tokenizer.
NER_COMPONENTS = ("tok2vec", "ner")


class PresidioRedactor:
    """Finds PII with Presidio's analyzer; reports positions and counts, never values."""

    def __init__(
        self,
        *,
        spacy_model: str,
        entities: Sequence[str] = SUPPORTED_ENTITIES,
        language: str = "en",
        timeout_s: float = 10.0,
        profile: RedactionProfile = RedactionProfile.STRICT,
        inline_chars: int = 2_000,
    ) -> None:
        self._spacy_model = spacy_model
        self._entities = frozenset(entities)
        self._language = language
        self._timeout_s = timeout_s
        self._profile = profile
        self._inline_chars = inline_chars
        self._engine: Any = None
        self._nlp: Any = None
        self._nlp_engine: Any = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def profile(self) -> RedactionProfile:
        return self._profile

    def warm_up(self) -> None:
        if self._engine is not None:
            return
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        from services.pii_person import Lexicons, lexicons_from
        from services.pii_recognizers import RuleContext, build_registry
        from services.redaction_engine import PiiEngine

        try:
            nlp_engine = NlpEngineProvider(
                nlp_configuration={
                    "nlp_engine_name": "spacy",
                    "models": [{"lang_code": self._language, "model_name": self._spacy_model}],
                }
            ).create_engine()
            nlp = nlp_engine.get_nlp(self._language)  # type: ignore[attr-defined]
            lexicons = (
                lexicons_from(nlp)
                if PERSON in self._entities
                else Lexicons(english=frozenset(), given=frozenset())
            )
        except Exception as exc:  # a missing model or name list: the redactor is unusable
            raise RedactorUnavailableError(
                f"spaCy model {self._spacy_model!r} or the name list cannot be loaded"
            ) from exc
        analyzer = AnalyzerEngine(
            registry=build_registry(self._language, self._entities),
            nlp_engine=nlp_engine,
            supported_languages=[self._language],
            context_aware_enhancer=RuleContext(),
        )
        self._nlp, self._nlp_engine = nlp, nlp_engine
        self._engine = PiiEngine(analyzer, lexicons, self._language)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="presidio")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def health(self) -> bool:
        return self._engine is not None

    def entities(self, profile: RedactionProfile | None = None) -> frozenset[str]:
        """The types a redaction with ``profile`` (default: the instance's) replaces."""
        return (profile or self._profile).entities(self._entities)

    def _docs(self, texts: Sequence[str], ner: bool, batch_size: int) -> Iterator[Any]:
        """spaCy docs of ``texts`` from one ``nlp.pipe`` pass with only the needed components."""
        keep = NER_COMPONENTS if ner else ()
        off = [name for name in self._nlp.pipe_names if name not in keep]
        return self._nlp.pipe(texts, batch_size=batch_size, disable=off)  # type: ignore[no-any-return]

    def _artifacts(self, doc: Any) -> Any:
        from presidio_analyzer.nlp_engine import NlpArtifacts

        people = [e for e in doc.ents if e.label_ == PERSON]
        return NlpArtifacts(
            entities=people,
            tokens=doc,
            tokens_indices=[t.idx for t in doc],
            lemmas=[t.lemma_ or t.lower_ for t in doc],
            nlp_engine=self._nlp_engine,
            language=self._language,
            scores=[0.85] * len(people),
        )

    def _find_many(
        self, texts: Sequence[str], profile: RedactionProfile | None, batch_size: int = 32
    ) -> list[list[EntitySpan]]:
        from services.pii_regions import protected_regions
        from services.pii_screen import analysis_for

        entities = self.entities(profile)
        out: list[list[EntitySpan]] = [[] for _ in texts]
        wanted = [i for i, t in enumerate(texts) if t.strip()]
        if not entities or not wanted:
            return out
        # the recognizers read a folded copy (look-alike digits, dashes, invisible characters)
        folded = {i: fold(texts[i]) for i in wanted}
        read = {i: folded[i].text for i in wanted}
        regions = {i: protected_regions(read[i]) for i in wanted}
        # NER only where a name could be kept (a capitalised word outside code and identifiers),
        # the recognizers alone where only a value could be, nothing where nothing could
        # (``pii_screen`` says why)
        needs = {i: analysis_for(read[i], entities, regions[i]) for i in wanted}
        ner = [i for i in wanted if needs[i] == "names and values"]
        plain = [i for i in wanted if needs[i] == "values"]
        for ids, with_ner in ((ner, True), (plain, False)):
            docs = self._docs([read[i] for i in ids], with_ner, batch_size)
            for i, doc in zip(ids, docs, strict=True):
                found = self._engine.spans(read[i], self._artifacts(doc), entities, regions[i])
                out[i] = [_in_original(span, folded[i]) for span in found]
        return out

    def find(self, text: str, *, profile: RedactionProfile | None = None) -> list[EntitySpan]:
        if not text.strip() or not self.entities(profile):
            return []
        self.warm_up()
        assert self._pool is not None
        try:
            if len(text) <= self._inline_chars:
                return self._find_many([text], profile)[0]
            future = self._pool.submit(self._find_many, [text], profile)
            return future.result(timeout=self._timeout_s)[0]
        except FutureTimeout as exc:
            raise RedactorUnavailableError(
                f"PII analysis took longer than {self._timeout_s:.0f}s"
            ) from exc
        except Exception as exc:  # fail closed on any analyzer error
            raise RedactorUnavailableError(f"PII analysis failed: {type(exc).__name__}") from exc

    def redact(
        self,
        text: str,
        *,
        profile: RedactionProfile | None = None,
        placeholders: Placeholders | None = None,
    ) -> Redaction:
        """``text`` with its PII replaced by typed placeholders (``<PERSON_1>``), numbered by
        ``placeholders`` (a document's or request's), else afresh for this one text."""
        spans = self.find(text, profile=profile)
        if not spans:
            return Redaction(text=text)
        return anonymize(text, spans, placeholders if placeholders is not None else Placeholders())


def _in_original(span: EntitySpan, folded: FoldedText) -> EntitySpan:
    start, end = folded.original_span(span.start, span.end)
    return EntitySpan(start, end, span.entity_type)
