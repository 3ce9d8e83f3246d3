"""JSON log lines: ids from the trace and the request, exceptions without their message."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from gateway.observability.json_logs import JsonFormatter
from gateway.observability.request_context import RequestInfo, current_request, name_principal

pytestmark = pytest.mark.unit


def _line(record: logging.LogRecord) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def _record(msg: str, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("holdfast.test", logging.ERROR, __file__, 1, msg, (), exc_info)  # type: ignore[arg-type]


def test_a_line_carries_trace_span_request_and_principal() -> None:
    tracer = TracerProvider().get_tracer("t")
    token = current_request.set(RequestInfo("req-7"))
    try:
        name_principal("alice")
        with tracer.start_as_current_span("x") as span:
            line = _line(_record("hello"))
            ctx = span.get_span_context()
    finally:
        current_request.reset(token)
    assert line["message"] == "hello" and line["level"] == "ERROR"
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert line["span_id"] == format(ctx.span_id, "016x")
    assert (line["request_id"], line["principal"]) == ("req-7", "alice")


def test_outside_a_request_there_are_no_ids() -> None:
    line = _line(_record("idle"))
    assert not {"trace_id", "request_id", "principal"} & set(line)


def test_an_exception_is_logged_by_type_and_frames_not_message() -> None:
    try:
        raise ValueError("jane.roe@example.com owes 12,000")
    except ValueError:
        import sys

        line = _line(_record("failed", sys.exc_info()))
    assert line["exc_type"] == "ValueError" and line["exc_frames"]
    assert "jane.roe" not in json.dumps(line)


def test_libraries_below_warning_never_reach_the_log() -> None:
    from gateway.observability.json_logs import LibraryDetailFilter

    keep = LibraryDetailFilter().filter
    chatty = logging.LogRecord("presidio-analyzer", logging.DEBUG, "", 1, "context: jane", (), None)
    warned = logging.LogRecord("litellm", logging.WARNING, "", 1, "retrying", (), None)
    own = logging.LogRecord("holdfast.audit", logging.INFO, "", 1, "POST /v1/query", (), None)
    assert not keep(chatty) and keep(warned) and keep(own)
