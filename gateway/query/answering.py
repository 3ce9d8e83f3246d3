"""The query path, one function per policy step, in the order the architecture fixes:

    redact the question -> retrieve with the caller's groups (filter inside the store query)
    -> judge retrieval (refuse without calling the model when weak) -> rerank -> group by
    document -> assemble context (refuse when the question names an API no passage names)
    -> generate -> redact the answer -> clean and attribute it
    (every sentence to passages; unsupported ones flagged, or the answer refused) -> cite.

Redaction fails closed: a redactor error propagates as 503 and nothing reaches the model.
Streaming (``gateway.query.events``) shares every step up to generation.
"""

from __future__ import annotations

from collections import Counter

from gateway.observability.span_attributes import set_counts, set_ids
from gateway.query.attribution import (
    Attribution,
    attribute,
    attribution_dicts,
    clean_answer,
    mark_cited,
    should_refuse,
)
from gateway.query.clock import StageClock
from gateway.query.named_terms import unmatched_names
from gateway.query.prompt import REFUSAL_TEXT, build_messages, cite, declined
from gateway.query.records import Answer, Ports, QueryOptions, Retrieval
from gateway.query.retrieval import (
    assemble_context,
    context_order,
    group_by_document,
    judge,
    redact,
    redact_unredacted_hits,
    rerank,
    retrieve,
    widen_to_sections,
)
from gateway.security.keys import Principal
from services.cancellation import Cancellation
from services.records import Completion


def retrieve_step(
    question: str,
    principal: Principal,
    ports: Ports,
    options: QueryOptions,
    tally: Counter[str],
    clock: StageClock,
) -> tuple[str, Retrieval]:
    """Everything before generation: the redacted question and the context, or a refusal."""
    with clock.stage("redact_in") as span:
        tally_before = Counter(tally)
        safe_question = redact(question, ports.redactor, tally)
        set_counts(span, "holdfast.redactions", tally - tally_before)
        span.set_attribute("holdfast.redactor", ports.redactor is not None)
        if options.trace_redacted_text:
            span.set_attribute("holdfast.question.redacted", safe_question)
    with clock.stage("retrieve") as span:
        hits = retrieve(
            safe_question,
            principal,
            store=ports.store,
            embedder=ports.embedder,
            limit=options.candidates,
            alpha=options.alpha,
            filters=options.filters,
            clock=clock,
        )
        status, confidence = judge(hits, options.min_similarity)
        span.set_attribute("holdfast.retrieval.status", status)
        span.set_attribute("holdfast.retrieval.confidence", confidence)
        span.set_attribute("holdfast.retrieval.hits", len(hits))
    if status != "ok":
        return safe_question, Retrieval(status, confidence, [])
    reranked = False
    if ports.reranker is not None and len(hits) > 1:
        with clock.stage("rerank") as span:
            hits = rerank(safe_question, hits, ports.reranker)
            reranked = True
            span.set_attribute("holdfast.rerank.candidates", len(hits))
            set_ids(span, "holdfast.rerank.chunk_ids", [h.chunk.chunk_id for h in hits])
    with clock.stage("assemble") as span:
        documents = group_by_document(
            hits,
            options.top_k,
            options.passages_per_document,
            0.0 if reranked else options.second_passage_weight,
        )
        context = assemble_context(context_order(documents), options.max_context_chars)
        parents = sorted({h.chunk.parent_id for h in context if h.chunk.parent_id})
        sections = ports.store.section_chunks(groups=principal.groups, parent_ids=parents)
        context = widen_to_sections(context, sections, options.max_context_chars)
        context = redact_unredacted_hits(context, ports.redactor, tally)
        span.set_attribute("holdfast.context.documents", len(documents))
        span.set_attribute("holdfast.context.passages", len(context))
        span.set_attribute("holdfast.context.chars", sum(len(h.chunk.text) for h in context))
        set_ids(span, "holdfast.context.chunk_ids", [h.chunk.chunk_id for h in context])
        set_ids(span, "holdfast.context.doc_ids", [h.chunk.doc_id for h in context])
        if options.refuse_unknown_names:
            unknown = unmatched_names(safe_question, [h.chunk for h in context])
            span.set_attribute("holdfast.question.unknown_names", len(unknown))
            if unknown:  # the documents do not describe what the question names
                return safe_question, Retrieval("unknown_name", confidence, [], reranked)
    return safe_question, Retrieval(status, confidence, context, reranked)


def _generate(
    question: str,
    retrieval: Retrieval,
    ports: Ports,
    options: QueryOptions,
    clock: StageClock,
    cancel: Cancellation | None = None,
) -> Completion:
    with clock.stage("generate") as span:
        span.set_attribute("holdfast.alias", options.chat_alias)
        completion = ports.router.complete(
            options.chat_alias,
            build_messages(question, retrieval.context),
            max_tokens=options.max_tokens,
            cancel=cancel,
        )
        span.set_attribute("holdfast.model", completion.model or "")
        span.set_attribute("holdfast.fallback_used", completion.fallback_used)
        if completion.prompt_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", completion.prompt_tokens)
        if completion.completion_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", completion.completion_tokens)
    return completion


def _usage(completion: Completion) -> dict[str, int]:
    counts = (
        ("prompt_tokens", completion.prompt_tokens),
        ("completion_tokens", completion.completion_tokens),
    )
    return {k: v for k, v in counts if v is not None}


def answer_question(
    question: str,
    principal: Principal,
    *,
    ports: Ports,
    options: QueryOptions,
    cancel: Cancellation | None = None,
) -> Answer:
    """``cancel``: set by the HTTP edge when the client goes away; the model call then stops
    (and frees its slot on the model server) and ``RequestCancelledError`` is raised."""
    tally: Counter[str] = Counter()
    clock = StageClock(ports.tracer)
    safe_question, retrieval = retrieve_step(question, principal, ports, options, tally, clock)
    if retrieval.status != "ok":
        return Answer(
            answer=REFUSAL_TEXT,
            citations=[],
            retrieval_status=retrieval.status,
            confidence=retrieval.confidence,
            refused=True,
            refusal_reason=retrieval.status,
            model=None,
            redactions=tally,
            timings_ms=clock.ms,
            reranked=retrieval.reranked,
        )
    completion = _generate(safe_question, retrieval, ports, options, clock, cancel)
    with clock.stage("redact_out") as span:
        tally_before = Counter(tally)
        text = redact(completion.text.strip(), ports.redactor, tally)
        set_counts(span, "holdfast.redactions", tally - tally_before)
    text = clean_answer(text)
    refused = declined(text)
    reason = "model_declined" if refused else None
    attribution = Attribution()
    if not refused:
        attribution = attribute_step(text, retrieval, ports, clock)
        if should_refuse(attribution, options.unsupported_policy):
            refused, reason = True, "unsupported"
    return Answer(
        answer=_shown(text, reason),
        citations=[] if refused else mark_cited(cite(retrieval.context, text), attribution.cited),
        retrieval_status=retrieval.status,
        confidence=retrieval.confidence,
        refused=refused,
        refusal_reason=reason,
        model=completion.model,
        usage=_usage(completion),
        redactions=tally,
        timings_ms=clock.ms,
        reranked=retrieval.reranked,
        alias=completion.alias,
        fallback_used=completion.fallback_used,
        unsupported_sentences=[] if refused else attribution.unsupported,
        attribution=[] if refused else attribution_dicts(attribution),
    )


def _shown(text: str, reason: str | None) -> str:
    """The answer as returned: the model's own words unless refused for lack of support."""
    if reason == "unsupported":
        return REFUSAL_TEXT
    return (text or REFUSAL_TEXT) if reason == "model_declined" else text


def attribute_step(text: str, retrieval: Retrieval, ports: Ports, clock: StageClock) -> Attribution:
    """Tie each answer sentence to passages; the span carries counts only, never the text."""
    with clock.stage("attribute") as span:
        attribution = attribute(text, retrieval.context, ports.embedder)
        span.set_attribute("holdfast.attribution.sentences", len(attribution.sentences))
        span.set_attribute("holdfast.attribution.unsupported", len(attribution.unsupported))
        for by in ("marker", "overlap", "similarity", "none"):
            span.set_attribute(f"holdfast.attribution.by_{by}", attribution.count(by))
    return attribution
