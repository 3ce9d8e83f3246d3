"""Search and grounded answers for callers with the ``query`` role."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from opentelemetry.trace import Tracer
from pydantic import BaseModel, Field
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from gateway.api.audit_middleware import audit_context, note_answer, track_events
from gateway.api.deps import ComponentsDep, QueryPrincipalDep
from gateway.api.disconnect import (
    cancellable_event_stream,
    run_unless_disconnected,
)
from gateway.components import Components
from gateway.query.answering import answer_question
from gateway.query.events import stream_answer
from gateway.query.filters import FilterClause, to_field_filters
from gateway.query.prompt import citation_dict
from gateway.query.records import DocumentHit, GroupBy, Ports, QueryOptions
from gateway.query.retrieval import (
    group_by_document,
    judge,
    redact,
    redact_unredacted_hits,
    rerank,
    retrieve,
)
from services.cancellation import Cancellation
from services.errors import InvalidRequestError, RerankerNotConfiguredError
from services.records import SearchHit

router = APIRouter(prefix="/v1", tags=["query"])


class RetrievalParams(BaseModel):
    top_k: int | None = Field(
        None,
        ge=1,
        description="Documents to return (chunks with group_by=chunk); bounded by settings.",
    )
    alpha: float | None = Field(None, ge=0.0, le=1.0, description="0 = BM25 only, 1 = vector only.")
    filters: list[FilterClause] | None = Field(None, description="AND-ed metadata conditions.")


class QueryRequest(RetrievalParams):
    question: str = Field(min_length=1, description="The question, in plain language.")
    stream: bool = Field(False, description="Answer as server-sent events.")


class SearchRequest(RetrievalParams):
    query: str = Field(min_length=1, description="What to search for.")
    rerank: bool = Field(
        False, description="Reorder the hits with the rerank-default alias (409 if none)."
    )
    group_by: Literal["document", "chunk"] = Field(
        "document",
        description="document: one result per document, its best chunk first and its other "
        "matching chunks as `passages`; chunk: one result per chunk.",
    )


class CitationOut(BaseModel):
    index: int
    doc_id: str
    chunk_id: str
    source: str
    title: str
    section: str
    page: int | None
    quote: str
    score: float
    similarity: float
    cited: bool = Field(
        description="An answer sentence rests on this passage: it cites [index], or (without "
        "markers) shares its content or is nearest to it in meaning."
    )


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationOut]
    retrieval_status: str = Field(
        description="ok | low_confidence | no_results | unknown_name (the question names an "
        "API or identifier, such as json.load_yaml, that no retrieved passage names)"
    )
    confidence: float = Field(description="Best cosine similarity of a retrieved chunk.")
    refused: bool
    refusal_reason: str | None
    model: str | None
    usage: dict[str, int]
    redactions: dict[str, int] = Field(description="PII values redacted, by entity type.")
    timings_ms: dict[str, float] = Field(description="Wall time per policy stage.")
    reranked: bool = Field(description="A reranker reordered the candidates.")
    alias: str | None = Field(description="The models.yaml alias that answered.")
    fallback_used: bool = Field(description="A fallback alias answered; the primary failed.")
    unsupported_sentences: list[str] = Field(
        default_factory=list,
        description="Answer sentences no passage supports: a number, name, identifier or "
        "setting in no passage, or no passage to attribute (generation.unsupported_policy).",
    )
    attribution: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per answer sentence: sentence, passages (citation indexes), by "
        "(marker | overlap | similarity | neighbour | none), supported.",
    )


class Passage(BaseModel):
    chunk_id: str
    text: str
    score: float
    similarity: float
    section: str
    page: int | None

    @classmethod
    def of(cls, hit: SearchHit) -> Passage:
        c = hit.chunk
        return cls(
            chunk_id=c.chunk_id,
            text=c.text,
            score=hit.score,
            similarity=hit.similarity,
            section=c.section,
            page=c.page,
        )


class SearchResult(BaseModel):
    doc_id: str
    chunk_id: str = Field(description="The best matching chunk of the document.")
    text: str
    score: float
    similarity: float
    source: str
    title: str
    section: str
    page: int | None
    passages: list[Passage] = Field(
        default_factory=list,
        description="The document's other matching chunks, best first (group_by=document).",
    )

    @classmethod
    def of(cls, document: DocumentHit) -> SearchResult:
        best, c = document.best, document.best.chunk
        return cls(
            doc_id=c.doc_id,
            chunk_id=c.chunk_id,
            text=c.text,
            score=best.score,
            similarity=best.similarity,
            source=c.source,
            title=c.title,
            section=c.section,
            page=c.page,
            passages=[Passage.of(h) for h in document.passages],
        )


class SearchResponse(BaseModel):
    results: list[SearchResult]
    retrieval_status: str
    confidence: float


def options_for(
    components: Components,
    params: RetrievalParams,
    question: str,
    group_by: GroupBy = "document",
) -> QueryOptions:
    """Per-request knobs, bounded by the operator's settings."""
    s = components.settings
    if len(question) > s.limits.max_question_chars:
        raise InvalidRequestError(
            f"the question is longer than {s.limits.max_question_chars} characters"
        )
    top_k = params.top_k or s.retrieval.top_k
    if top_k > s.limits.max_top_k:
        raise InvalidRequestError(f"top_k may be at most {s.limits.max_top_k}")
    alpha = s.retrieval.alpha if params.alpha is None else params.alpha
    if not s.retrieval.alpha_min <= alpha <= s.retrieval.alpha_max:
        raise InvalidRequestError(
            f"alpha must lie in [{s.retrieval.alpha_min}, {s.retrieval.alpha_max}]"
        )
    per_document = s.retrieval.candidates_per_document if group_by == "document" else 1
    return QueryOptions(
        top_k=top_k,
        alpha=alpha,
        min_similarity=s.retrieval.min_score,
        max_context_chars=s.generation.max_context_chars,
        chat_alias=s.generation.chat_alias,
        candidates=min(max(top_k * per_document, top_k), s.retrieval.max_candidates),
        passages_per_document=s.retrieval.passages_per_document,
        second_passage_weight=s.retrieval.second_passage_weight,
        stream_window_chars=s.redaction.stream_window_chars,
        group_by=group_by,
        filters=tuple(to_field_filters(params.filters)),
        trace_redacted_text=s.telemetry.record_redacted_text,
        unsupported_policy=s.generation.unsupported_policy,
        refuse_unknown_names=s.retrieval.refuse_unknown_names,
    )


def ports_of(components: Components, tracer: Tracer | None = None) -> Ports:
    """One consistent model set per request, even if an admin swaps models meanwhile."""
    current = components.registry.current()
    return Ports(
        components.store,
        current.embedder,
        current.router,
        components.redactor,
        current.reranker,
        tracer,
    )


def tracer_of_app(request: Request) -> Tracer | None:
    return getattr(request.app.state, "tracer", None)


def chat_model_name(components: Components, alias: str) -> str:
    try:
        return str(components.models.entry(alias).litellm_params.get("model", alias))
    except Exception:  # an alias the file lacks is reported by the router on use
        return alias


def sse(events: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[ServerSentEvent]:
    for name, data in events:
        yield ServerSentEvent(json.dumps(data), event=name)


def wants_stream(request: Request, asked: bool) -> bool:
    return asked or "text/event-stream" in request.headers.get("accept", "")


@router.post(
    "/query",
    response_model=QueryResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def create_answer(
    body: QueryRequest, request: Request, principal: QueryPrincipalDep, components: ComponentsDep
) -> Any:
    """Answer from the documents the caller may read, with citations; or refuse."""
    options = options_for(components, body, body.question)
    ports = ports_of(components, tracer_of_app(request))
    audit = audit_context(request.state)
    audit.alias = options.chat_alias
    cancel = Cancellation()  # set when the client goes away: the model call then stops
    if wants_stream(request, body.stream):
        events = await run_unless_disconnected(
            request.receive,
            cancel,
            stream_answer,
            body.question,
            principal,
            ports=ports,
            options=options,
            model_name=chat_model_name(components, options.chat_alias),
            cancel=cancel,
        )
        return cancellable_event_stream(
            sse(track_events(events, audit)), cancel, audit, close=events.close
        )
    answer = await run_unless_disconnected(
        request.receive,
        cancel,
        answer_question,
        body.question,
        principal,
        ports=ports,
        options=options,
        cancel=cancel,
    )
    note_answer(audit, answer)
    return QueryResponse(
        answer=answer.answer,
        citations=[CitationOut(**citation_dict(c)) for c in answer.citations],
        retrieval_status=answer.retrieval_status,
        confidence=answer.confidence,
        refused=answer.refused,
        refusal_reason=answer.refusal_reason,
        model=answer.model,
        usage=answer.usage,
        redactions=dict(answer.redactions),
        timings_ms=answer.timings_ms,
        reranked=answer.reranked,
        alias=answer.alias,
        fallback_used=answer.fallback_used,
        unsupported_sentences=answer.unsupported_sentences,
        attribution=answer.attribution,
    )


@router.post("/search", response_model=SearchResponse)
async def search_chunks(
    body: SearchRequest,
    request: Request,
    principal: QueryPrincipalDep,
    components: ComponentsDep,
) -> SearchResponse:
    """Hybrid search over what the caller may read, one result per document (no generation)."""
    options = options_for(components, body, body.query, body.group_by)
    ports = ports_of(components, tracer_of_app(request))
    if body.rerank and ports.reranker is None:
        raise RerankerNotConfiguredError(
            "rerank was asked for, but models.yaml has no rerank-default alias; add one "
            "(for example a text-embeddings-inference reranker) and reload"
        )
    audit = audit_context(request.state)

    def _search() -> SearchResponse:
        tally: Counter[str] = Counter()
        question = redact(body.query, ports.redactor, tally)
        hits = retrieve(
            question,
            principal,
            store=ports.store,
            embedder=ports.embedder,
            limit=options.candidates,
            alpha=options.alpha,
            filters=options.filters,
        )
        status, confidence = judge(hits, options.min_similarity)
        weight = options.second_passage_weight
        if body.rerank and ports.reranker is not None and len(hits) > 1:
            hits = rerank(question, hits, ports.reranker)
            weight = 0.0  # the reranker's order stands
        if options.group_by == "document":
            documents = group_by_document(
                hits, options.top_k, options.passages_per_document, weight
            )
        else:
            documents = [DocumentHit(h) for h in hits[: options.top_k]]
        documents = [
            DocumentHit(best, tuple(rest))
            for best, *rest in (
                redact_unredacted_hits(d.hits, ports.redactor, tally) for d in documents
            )
        ]
        returned = [h for d in documents for h in d.hits]
        audit.redactions = dict(tally)
        audit.add_hits((h.chunk.doc_id, h.chunk.chunk_id) for h in returned)
        audit.decision = "answered" if returned else "refused"
        audit.reason = "" if returned else status
        return SearchResponse(
            results=[SearchResult.of(d) for d in documents],
            retrieval_status=status,
            confidence=confidence,
        )

    return await run_in_threadpool(_search)
