"""A streamed answer as a sequence of named events: ``retrieval`` (citations first),
``token``..., then ``done``; or ``error``. Framing them for the wire is the HTTP edge's job.

Tokens pass a navigation/markup cleaner (a line that may hold some is held until it ends). The
``done`` event carries the sentence attribution: ``cited`` (passage numbers), ``attribution`` and
``unsupported_sentences``, and ``timings_ms``: the policy stages before the stream, then
``model_first_piece`` (model call to its first piece: the model's own time to first token, as the
gateway saw it) and ``hold_back`` (first piece to first token sent: the redaction window's wait
for more model text), so a client can tell the gateway's share of its time to first token.

Under ``unsupported_policy: refuse`` the answer is held back until it has been checked, then sent
as one token, or replaced by the refusal."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Generator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from gateway.observability.span_attributes import set_counts
from gateway.query.answering import retrieve_step
from gateway.query.attribution import (
    StreamCleaner,
    attribute,
    attribution_dicts,
    should_refuse,
)
from gateway.query.clock import StageClock
from gateway.query.prompt import (
    REFUSAL_TEXT,
    build_messages,
    citation_dict,
    cite,
    declined,
)
from gateway.query.records import Event, Ports, QueryOptions, Retrieval
from gateway.query.stream_redaction import StreamRedactor
from gateway.security.keys import Principal
from services.cancellation import Cancellation
from services.errors import HoldfastError


def stream_answer(
    question: str,
    principal: Principal,
    *,
    ports: Ports,
    options: QueryOptions,
    model_name: str,
    cancel: Cancellation | None = None,
) -> Generator[Event, None, None]:
    """Retrieval runs before the first event so that its errors still become a plain HTTP
    error; generation runs as the caller iterates. Once ``cancel`` is set, or the returned
    generator is closed, the model call stops and its connection is closed."""
    tally: Counter[str] = Counter()
    clock = StageClock(ports.tracer)
    safe_question, retrieval = retrieve_step(question, principal, ports, options, tally, clock)
    parent = otel_context.get_current()  # the request's span: the stream runs later, elsewhere
    return _stream_events(
        safe_question, retrieval, ports, options, model_name, tally, parent, cancel, clock.ms
    )


def _stream_events(
    safe_question: str,
    retrieval: Retrieval,
    ports: Ports,
    options: QueryOptions,
    model_name: str,
    tally: Counter[str],
    parent: otel_context.Context | None = None,
    cancel: Cancellation | None = None,
    timings_ms: dict[str, float] | None = None,
) -> Generator[Event, None, None]:
    timings = dict(timings_ms or {})
    citations = cite(retrieval.context, "")
    yield (
        "retrieval",
        {
            "retrieval_status": retrieval.status,
            "confidence": retrieval.confidence,
            "reranked": retrieval.reranked,
            "citations": [citation_dict(c) for c in citations],
        },
    )
    if retrieval.status != "ok":
        yield "token", {"text": REFUSAL_TEXT}
        yield "done", {**_done(retrieval, None, tally, 0, True), "timings_ms": timings}
        return
    window = StreamRedactor(ports.redactor, tally, window_chars=options.stream_window_chars)
    cleaner = StreamCleaner()
    hold = options.unsupported_policy == "refuse"  # nothing unchecked reaches the caller
    pieces = 0
    emitted: list[str] = []
    # started, not made current: the generator resumes in other threads' contexts
    span = (ports.tracer or trace.NoOpTracer()).start_span("generate", context=parent)
    span.set_attribute("holdfast.alias", options.chat_alias)
    span.set_attribute("holdfast.model", model_name)
    span.set_attribute("holdfast.stream", True)
    called = time.perf_counter()
    first_piece: float | None = None
    first_token: float | None = None
    pieces_in = ports.router.stream(
        options.chat_alias,
        build_messages(safe_question, retrieval.context),
        max_tokens=options.max_tokens,
        cancel=cancel,
    )
    try:
        for piece in pieces_in:
            pieces += 1
            if first_piece is None:
                first_piece = time.perf_counter()
            safe = cleaner.feed(window.feed(piece))
            if safe:
                emitted.append(safe)
                if not hold:
                    if first_token is None:
                        first_token = time.perf_counter()
                    yield "token", {"text": safe}
        rest = cleaner.feed(window.flush()) + cleaner.flush()
        if rest:
            emitted.append(rest)
            if not hold:
                if first_token is None:  # an answer shorter than the window comes out here
                    first_token = time.perf_counter()
                yield "token", {"text": rest}
    except HoldfastError as exc:
        span.set_status(Status(StatusCode.ERROR, exc.code))
        yield "error", {"code": exc.code, "title": exc.title, "detail": str(exc)}
        return
    finally:
        pieces_in.close()  # a reader that stopped early must not leave the model generating
        span.set_attribute("gen_ai.usage.output_tokens", pieces)
        set_counts(span, "holdfast.redactions", tally)
        span.end()
    answer = "".join(emitted)
    refused = declined(answer)
    attribution = attribute(answer, retrieval.context, ports.embedder) if not refused else None
    unsupported = attribution is not None and should_refuse(attribution, options.unsupported_policy)
    if hold:
        yield "token", {"text": REFUSAL_TEXT if unsupported or not answer.strip() else answer}
    # the router's stream names the alias that answered (a fallback, when the primary failed)
    done = _done(
        retrieval,
        getattr(pieces_in, "model", None) or model_name,
        tally,
        pieces,
        refused or unsupported,
    )
    done["alias"] = getattr(pieces_in, "alias", None) or options.chat_alias
    done["fallback_used"] = bool(getattr(pieces_in, "fallback_used", False))
    done["refusal_reason"] = "model_declined" if refused else "unsupported" if unsupported else None
    shown = attribution is not None and not unsupported
    done["cited"] = sorted(attribution.cited) if shown and attribution else []
    done["unsupported_sentences"] = attribution.unsupported if shown and attribution else []
    done["attribution"] = attribution_dicts(attribution) if shown and attribution else []
    if first_piece is not None:
        timings["model_first_piece"] = _ms(first_piece - called)
        if first_token is not None:
            timings["hold_back"] = _ms(first_token - first_piece)
    done["timings_ms"] = timings
    yield "done", done


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _done(
    retrieval: Retrieval, model: str | None, tally: Counter[str], pieces: int, refused: bool
) -> dict[str, Any]:
    return {
        "retrieval_status": retrieval.status,
        "confidence": retrieval.confidence,
        "model": model,
        "usage": {"completion_tokens": pieces} if pieces else {},
        "redactions": dict(tally),
        "refused": refused,
    }
