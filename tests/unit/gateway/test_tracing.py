"""Stage spans: timings and spans from one clock; failures carry the error type, no message."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from gateway.observability.span_attributes import set_counts
from gateway.observability.tracing import build_tracer_provider
from gateway.query.clock import StageClock
from gateway.settings import TelemetrySettings

pytestmark = pytest.mark.unit


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _clock(exporter: InMemorySpanExporter) -> StageClock:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return StageClock(provider.get_tracer("test"))


def test_a_stage_is_timed_and_traced_and_sub_spans_nest(exporter: InMemorySpanExporter) -> None:
    clock = _clock(exporter)
    with clock.stage("retrieve"), clock.span("embed") as span:
        span.set_attribute("holdfast.embedding.dimensions", 384)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(clock.ms) == {"retrieve"}
    assert spans["embed"].parent is not None
    assert spans["embed"].parent.span_id == spans["retrieve"].context.span_id


def test_a_failing_stage_records_the_type_never_the_message(
    exporter: InMemorySpanExporter,
) -> None:
    clock = _clock(exporter)
    with pytest.raises(ValueError), clock.stage("generate"):
        raise ValueError("Jane Roe's salary is 90,000")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError"
    assert (span.attributes or {}).get("error.type") == "ValueError"
    assert "Jane" not in repr(span.to_json()) and not span.events


def test_counts_only_for_entity_type_names(exporter: InMemorySpanExporter) -> None:
    clock = _clock(exporter)
    with clock.stage("redact_in") as span:
        set_counts(span, "holdfast.redactions", {"PERSON": 2, "jane@example.com": 1})
    (done,) = exporter.get_finished_spans()
    assert dict(done.attributes or {}) == {"holdfast.redactions.PERSON": 2}


def test_no_provider_when_tracing_is_off() -> None:
    assert build_tracer_provider(TelemetrySettings()) is None
    assert build_tracer_provider(TelemetrySettings(exporter="console")) is not None


def test_request_spans_carry_the_route_template_never_the_callers_path() -> None:
    """An SSN sent as a job id, and a query string, reach no span (the PII canary sweep's
    spans sink found both before the URL attributes were reduced to the template)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from gateway.observability.tracing import URL_ATTRIBUTES, url_scrubber

    app = FastAPI()

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str) -> dict[str, str]:
        return {"status": "unknown"}

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, server_request_hook=url_scrubber(app)
    )
    with TestClient(app) as client:
        assert client.get("/v1/jobs/684-66-2129?owner=AKIAQJNLNWYGMFBMNYUK").status_code == 200
        assert client.get("/v1/nowhere/684-66-2129").status_code == 404
    finished = spans.get_finished_spans()
    assert finished
    text = "\n".join(span.to_json() for span in finished)
    assert "684-66-2129" not in text and "AKIAQJNLNWYGMFBMNYUK" not in text
    server = [s for s in finished if s.name == "GET /v1/jobs/{job_id}"]
    assert server and any(k in (server[0].attributes or {}) for k in URL_ATTRIBUTES)
    assert all(
        (server[0].attributes or {}).get(k) in {"/v1/jobs/{job_id}", ""}
        for k in URL_ATTRIBUTES
        if k in (server[0].attributes or {})
    )


def test_with_tracing_off_a_stage_is_still_timed_and_failures_still_propagate() -> None:
    clock = StageClock()  # no tracer: tracing is off
    with clock.stage("retrieve") as span, clock.span("embed") as inner:
        span.set_attribute("holdfast.search.hits", 3)  # accepted, recorded nowhere
        assert not span.is_recording() and not inner.is_recording()
    with pytest.raises(ValueError, match="boom"), clock.stage("generate"):
        raise ValueError("boom")
    assert set(clock.ms) == {"retrieve", "generate"}
    assert all(ms >= 0 for ms in clock.ms.values())
