"""Typed records of the query path: what a request asks for, what retrieval found, what the
caller gets back. No behaviour here, so every step and the HTTP edge can share them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.trace import Tracer

from services.ports import Embedder, ModelRouter, Redactor, Reranker, Store
from services.records import FieldFilter, SearchHit

RetrievalStatus = Literal["ok", "low_confidence", "no_results", "unknown_name"]
GroupBy = Literal["document", "chunk"]
UnsupportedPolicy = Literal["flag", "refuse"]
Event = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class QueryOptions:
    """Per-request knobs, already bounded by the operator's settings."""

    top_k: int  # documents (group_by="document") or chunks (group_by="chunk")
    alpha: float
    min_similarity: float
    max_context_chars: int
    chat_alias: str
    candidates: int  # chunks fetched from the store before grouping
    passages_per_document: int
    stream_window_chars: int
    group_by: GroupBy = "document"
    second_passage_weight: float = 0.0  # see group_by_document
    max_tokens: int | None = None
    filters: tuple[FieldFilter, ...] = ()
    trace_redacted_text: bool = False  # put the REDACTED question on the redact_in span
    # an answer sentence no passage supports: flag it in the answer, or refuse the answer
    unsupported_policy: UnsupportedPolicy = "flag"
    # refuse before generation when the question names a dotted identifier no passage names
    refuse_unknown_names: bool = True


@dataclass(frozen=True, slots=True)
class DocumentHit:
    """One document of a result page: its best chunk first, then its other matching chunks."""

    best: SearchHit
    passages: tuple[SearchHit, ...] = ()

    @property
    def doc_id(self) -> str:
        return self.best.chunk.doc_id

    @property
    def hits(self) -> tuple[SearchHit, ...]:
        return (self.best, *self.passages)


@dataclass(frozen=True, slots=True)
class Citation:
    index: int
    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: str
    page: int | None
    quote: str
    score: float
    similarity: float
    cited: bool


@dataclass(frozen=True, slots=True)
class Retrieval:
    status: RetrievalStatus
    confidence: float
    context: list[SearchHit]
    reranked: bool = False


@dataclass(slots=True)
class Answer:
    answer: str
    citations: list[Citation]
    retrieval_status: RetrievalStatus
    confidence: float
    refused: bool
    refusal_reason: str | None
    model: str | None
    usage: dict[str, int] = field(default_factory=dict)
    redactions: Counter[str] = field(default_factory=Counter)
    timings_ms: dict[str, float] = field(default_factory=dict)
    reranked: bool = False
    alias: str | None = None
    fallback_used: bool = False
    # sentences no passage supports (a number, name or setting in no passage; see attribution)
    unsupported_sentences: list[str] = field(default_factory=list)
    # per sentence: {"sentence", "passages" (1-based), "by", "supported"}
    attribution: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Ports:
    """The collaborators one request uses, taken once so a model swap cannot split a request."""

    store: Store
    embedder: Embedder
    router: ModelRouter
    redactor: Redactor | None
    reranker: Reranker | None = None
    tracer: Tracer | None = None
