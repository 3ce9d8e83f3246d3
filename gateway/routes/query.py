"""Search and grounded answers for callers with the ``query`` role."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.answering import QueryOptions, answer_question, redact, retrieve
from gateway.deps import ComponentsDep, QueryPrincipalDep

router = APIRouter(prefix="/v1", tags=["query"])


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(None, ge=1, le=50)


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(None, ge=1, le=50)


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: str
    score: float
    similarity: float
    cited: bool


class QueryResponse(BaseModel):
    answer: str
    citations: list[CitationOut]
    refused: bool
    refusal_reason: str | None
    model: str | None
    retrieved: int
    redactions: dict[str, int]


class SearchHitOut(BaseModel):
    chunk_id: str
    doc_id: str
    source: str
    title: str
    section: str
    text: str
    score: float
    similarity: float


class SearchResponse(BaseModel):
    hits: list[SearchHitOut]


@router.post("/query", response_model=QueryResponse)
async def create_answer(
    body: QueryRequest, principal: QueryPrincipalDep, components: ComponentsDep
) -> QueryResponse:
    """Answer a question from the documents the caller may read, with citations."""
    settings = components.settings
    options = QueryOptions(
        top_k=body.top_k or settings.retrieval.top_k,
        alpha=settings.retrieval.alpha,
        min_similarity=settings.retrieval.min_score,
        max_context_chars=settings.generation.max_context_chars,
        chat_alias=settings.generation.chat_alias,
    )
    answer = await run_in_threadpool(
        answer_question,
        body.question,
        principal,
        store=components.store,
        embedder=components.embedder,
        router=components.router,
        redactor=components.redactor,
        options=options,
    )
    return QueryResponse(
        answer=answer.answer,
        citations=[CitationOut.model_validate(c, from_attributes=True) for c in answer.citations],
        refused=answer.refused,
        refusal_reason=answer.refusal_reason,
        model=answer.model,
        retrieved=answer.retrieved,
        redactions=dict(answer.redactions),
    )


@router.post("/search", response_model=SearchResponse)
async def search_chunks(
    body: SearchRequest, principal: QueryPrincipalDep, components: ComponentsDep
) -> SearchResponse:
    """Hybrid search over the chunks the caller may read (no generation)."""
    settings = components.settings

    def _search() -> SearchResponse:
        from collections import Counter

        question = redact(body.query, components.redactor, Counter())
        hits = retrieve(
            question,
            principal,
            store=components.store,
            embedder=components.embedder,
            top_k=body.top_k or settings.retrieval.top_k,
            alpha=settings.retrieval.alpha,
        )
        return SearchResponse(
            hits=[
                SearchHitOut(
                    chunk_id=h.chunk.chunk_id,
                    doc_id=h.chunk.doc_id,
                    source=h.chunk.source,
                    title=h.chunk.title,
                    section=h.chunk.section,
                    text=h.chunk.text,
                    score=h.score,
                    similarity=h.similarity,
                )
                for h in hits
            ]
        )

    return await run_in_threadpool(_search)
