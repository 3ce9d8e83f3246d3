"""Retrieval steps of the query path: redact the question, search within the caller's groups,
judge, rerank, group chunks into documents and assemble the context the model reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

from gateway.observability.span_attributes import set_ids, set_scores
from gateway.query.clock import StageClock
from gateway.query.records import DocumentHit, RetrievalStatus
from gateway.security.keys import Principal
from services.ports import Embedder, Redactor, Reranker, Store
from services.records import Chunk, FieldFilter, SearchHit
from services.redaction_profile import RedactionProfile


def redact(text: str, redactor: Redactor | None, tally: Counter[str]) -> str:
    if redactor is None:
        return text
    result = redactor.redact(text)
    tally.update(result.counts)
    return result.text


_STORED_REDACTED = frozenset({RedactionProfile.STRICT.value, RedactionProfile.STRUCTURED.value})


def redact_unredacted_hits(
    hits: Sequence[SearchHit], redactor: Redactor | None, tally: Counter[str]
) -> list[SearchHit]:
    """Hits of chunks stored unredacted (profile ``none``, or not recorded: an index from before
    profiles were stored, which fails closed) get the output redaction an answer gets, in text,
    title and section, before the model, a citation or a search result sees them. A chunk
    stored ``structured`` keeps the words its uploader chose to keep."""
    if redactor is None:
        return list(hits)
    seen: dict[str, str] = {}

    def clean(text: str) -> str:
        if text not in seen:
            seen[text] = redact(text, redactor, tally)
        return seen[text]

    out = []
    for hit in hits:
        chunk = hit.chunk
        if chunk.redaction in _STORED_REDACTED:
            out.append(hit)
            continue
        safe = replace(
            chunk, text=clean(chunk.text), title=clean(chunk.title), section=clean(chunk.section)
        )
        out.append(replace(hit, chunk=safe))
    return out


def retrieve(
    question: str,
    principal: Principal,
    *,
    store: Store,
    embedder: Embedder,
    limit: int,
    alpha: float,
    filters: Sequence[FieldFilter] = (),
    clock: StageClock | None = None,
) -> list[SearchHit]:
    """Search only what ``principal`` may read, ``limit`` chunks at most. A caller in no group
    simply finds nothing: the response must not reveal that documents exist elsewhere."""
    if not principal.groups:
        return []
    spans = clock or StageClock()
    with spans.span("embed") as span:
        vector = embedder.embed_query(question)
        span.set_attribute("holdfast.embedding.dimensions", len(vector))
    with spans.span("search") as span:
        hits = store.search(
            groups=principal.groups,
            query=question,
            vector=vector,
            limit=limit,
            alpha=alpha,
            filters=filters,
        )
        if span.is_recording():  # with tracing off, skip building the attribute lists
            span.set_attribute("holdfast.search.limit", limit)
            span.set_attribute("holdfast.search.alpha", alpha)
            span.set_attribute("holdfast.search.groups", len(principal.groups))
            span.set_attribute("holdfast.search.filters", len(filters))
            span.set_attribute("holdfast.search.hits", len(hits))
            set_ids(span, "holdfast.search.chunk_ids", [h.chunk.chunk_id for h in hits])
            set_ids(span, "holdfast.search.doc_ids", [h.chunk.doc_id for h in hits])
            set_scores(span, "holdfast.search.scores", [h.score for h in hits])
            set_scores(span, "holdfast.search.similarities", [h.similarity for h in hits])
    return hits


def rerank(question: str, hits: Sequence[SearchHit], reranker: Reranker) -> list[SearchHit]:
    """Reorder candidates by the reranker's relevance; the similarity stays for judging. The
    reranker reads each chunk under its ``title — section`` line (what a reader sees above it).
    Hits it did not score (past its candidate cap or its time budget) follow, in their order."""
    texts = []
    for hit in hits:
        heading = " — ".join(p for p in dict.fromkeys((hit.chunk.title, hit.chunk.section)) if p)
        texts.append(f"{heading}\n{hit.chunk.text}" if heading else hit.chunk.text)
    ranked = [s.index for s in sorted(reranker.rerank(question, texts), key=lambda s: -s.score)]
    scored = set(ranked)
    return [hits[i] for i in ranked] + [h for i, h in enumerate(hits) if i not in scored]


def judge(hits: Sequence[SearchHit], min_similarity: float) -> tuple[RetrievalStatus, float]:
    """Cosine similarity is comparable across queries (fused hybrid scores are not)."""
    if not hits:
        return "no_results", 0.0
    confidence = round(max(h.similarity for h in hits), 4)
    return ("ok" if confidence >= min_similarity else "low_confidence"), confidence


def group_by_document(
    hits: Sequence[SearchHit],
    top_k: int,
    passages_per_document: int,
    second_passage_weight: float = 0.0,
) -> list[DocumentHit]:
    """The ``top_k`` best documents; each keeps up to ``passages_per_document`` of its chunks,
    best first, so a long page no longer fills a result page with its own chunks.

    ``hits`` come best first. A document ranks by its best chunk's score plus
    ``second_passage_weight`` times its second-best's: a page that matches the question in two
    places is more often the answer than a page with one lucky chunk. With weight 0 (and after a
    reranker, whose order is not a score) documents keep the order of their best chunks."""
    chunks: dict[str, list[SearchHit]] = {}
    for hit in hits:
        chunks.setdefault(hit.chunk.doc_id, []).append(hit)
    order = list(chunks)
    if second_passage_weight > 0:

        def score(doc: str) -> float:
            best, *rest = chunks[doc]
            return best.score + second_passage_weight * (rest[0].score if rest else 0.0)

        order.sort(key=score, reverse=True)  # stable: ties keep the order of best chunks
    return [
        DocumentHit(chunks[d][0], tuple(chunks[d][1:passages_per_document])) for d in order[:top_k]
    ]


def context_order(documents: Sequence[DocumentHit]) -> list[SearchHit]:
    """Every document's best chunk in document rank, then every second-best, and so on: a
    tight budget still sees the top documents before the depth of any one of them."""
    depth = max((len(d.hits) for d in documents), default=0)
    return [d.hits[i] for i in range(depth) for d in documents if i < len(d.hits)]


def assemble_context(hits: Iterable[SearchHit], budget_chars: int) -> list[SearchHit]:
    """Dedup by content and keep, in the given order, the hits that fit the budget."""
    chosen: list[SearchHit] = []
    seen: set[str] = set()
    used = 0
    for hit in hits:
        if hit.chunk.content_hash in seen:
            continue
        cost = len(hit.chunk.text)
        if chosen and used + cost > budget_chars:
            continue
        chosen.append(hit)
        seen.add(hit.chunk.content_hash)
        used += cost
    return chosen


def widen_to_sections(
    context: Sequence[SearchHit], section_chunks: Sequence[Chunk], budget_chars: int
) -> list[SearchHit]:
    """Replace a hit by its whole parent section when the section still fits the budget, then
    order the passages by their document's rank (best document first, so passage [1] is the
    likeliest answer) and, inside a document, as they stand in it."""
    by_parent: dict[str, list[Chunk]] = {}
    for chunk in section_chunks:
        by_parent.setdefault(chunk.parent_id, []).append(chunk)
    used = sum(len(h.chunk.text) for h in context)
    widened: list[SearchHit] = []
    done_parents: set[str] = set()
    for hit in context:
        parent = hit.chunk.parent_id
        if parent in done_parents:
            continue  # its section is already in the context
        siblings = sorted(by_parent.get(parent, []), key=lambda c: c.position)
        section_text = _join_overlapping([c.text for c in siblings])
        in_context = sum(len(h.chunk.text) for h in context if h.chunk.parent_id == parent)
        if len(siblings) > 1 and used - in_context + len(section_text) <= budget_chars:
            used += len(section_text) - in_context
            done_parents.add(parent)
            hit = replace(hit, chunk=replace(hit.chunk, text=section_text))
        widened.append(hit)
    rank = {doc: n for n, doc in reversed(list(enumerate(h.chunk.doc_id for h in widened)))}
    return sorted(widened, key=lambda h: (rank[h.chunk.doc_id], h.chunk.position))


def _join_overlapping(texts: Sequence[str]) -> str:
    """Join consecutive chunks, dropping the overlap a chunk repeats from the one before."""
    joined = ""
    for text in texts:
        longest = min(len(joined), len(text))
        overlap = next((n for n in range(longest, 0, -1) if joined.endswith(text[:n])), 0)
        rest = text[overlap:].strip()
        if rest:
            joined = f"{joined}\n\n{rest}" if joined else rest
    return joined
