"""Traces, metrics, logs and audit of a real query and a real ingestion, against the live stack:
the span tree has every stage with its attributes, and planted PII (in the question and in an
ingested document) appears in no span, log line, metric or audit record."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx_sse import EventSource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.main import create_default_app as create_app
from gateway.observability.json_logs import configure_logging
from gateway.security.keys import KeyStore
from gateway.settings import LoggingSettings
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.obs_gateway import gateway_settings

pytestmark = pytest.mark.integration

NAME, EMAIL, PHONE = "Jonathan Whitfield", "jonathan.whitfield@gmail.com", "415-555-0199"
IBAN = "DE89 3704 0044 0532 0130 00"
PLANTED = (
    "Jonathan",
    "Whitfield",
    EMAIL,
    "whitfield@",
    PHONE,
    "555-0199",
    IBAN,
    IBAN.replace(" ", ""),
    "0532 0130",
)
QUESTION = (
    f"I am {NAME}, email {EMAIL}, phone {PHONE}, IBAN {IBAN.replace(' ', '')}: "
    "how many days of paid annual leave do I get?"
)
DOCUMENT = f"""# Payroll contacts

## Leave payments

Questions about how annual leave is paid go to {NAME} in payroll, by email at {EMAIL} or by
phone on {PHONE}. Leave allowances are paid into the account IBAN {IBAN} each month.
"""
TRACEPARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
STAGES = {"auth", "redact_in", "retrieve", "embed", "search", "assemble", "generate", "redact_out"}


@pytest.fixture(scope="module")
def traced(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The gateway in this process, on the live services, with an in-memory span exporter
    and the JSON log formatter capturing every log line."""
    home = tmp_path_factory.mktemp("obs-home")
    settings = gateway_settings(live_stack.settings, home, PORT_BASE + 22)
    keys = KeyStore(settings.keys_db)
    _, admin = keys.create("obs-admin", groups=["handbook"], roles=["admin", "ingest", "query"])
    _, reader = keys.create("obs-reader", groups=["handbook"], roles=["query"])
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    logs = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    # the gateway's own logging set-up, at its most talkative level
    configure_logging(LoggingSettings(format="json", level="DEBUG"), stream=logs)
    try:
        with TestClient(create_app(settings, tracer_provider=provider)) as client:
            yield client, exporter, logs, admin, reader
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _everything_in(span: ReadableSpan) -> str:
    return str(span.to_json())


def test_query_and_ingestion_are_traced_and_no_planted_pii_leaks(
    traced: Any, tmp_path: Path
) -> None:
    client, exporter, logs, admin, reader = traced
    auth = {"Authorization": f"Bearer {admin}"}

    # ingest a document full of PII through the API (redaction on, the default)
    doc = tmp_path / "payroll-contacts.md"
    doc.write_text(DOCUMENT, encoding="utf-8")
    with doc.open("rb") as fh:
        accepted = client.post(
            "/v1/documents",
            files=[("files", ("payroll-contacts.md", fh, "text/markdown"))],
            data={"access_groups": "handbook"},
            headers=auth,
        )
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 300
    while True:
        reply = client.get(f"/v1/jobs/{job_id}", headers=auth)
        if reply.status_code == 429:  # the key's rate limit covers job polling
            time.sleep(float(reply.headers.get("Retry-After", "1")))
            continue
        job = reply.json()
        if job["status"] in {"succeeded", "partial", "failed"}:
            break
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "succeeded", job
    assert job["files"][0]["redactions"], "the document's PII was found and redacted"

    # the job had its span (ingestion's own stage spans nest in it when they are traced)
    def job_span() -> ReadableSpan | None:
        return next(
            (
                s
                for s in exporter.get_finished_spans()
                if s.name == "ingest.job" and _attrs(s).get("holdfast.job.id") == job_id
            ),
            None,
        )

    while job_span() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    ingest_span = job_span()
    assert ingest_span is not None and _attrs(ingest_span)["holdfast.job.status"] == "succeeded"
    ingest_spans = [s for s in exporter.get_finished_spans()]

    # ask with PII in the question, under an incoming W3C trace context
    exporter.clear()
    traceparent = f"00-{TRACEPARENT_TRACE}-00f067aa0ba902b7-01"
    response = client.post(
        "/v1/query",
        json={"question": QUESTION},
        headers={"Authorization": f"Bearer {reader}", "traceparent": traceparent},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["retrieval_status"] == "ok", body
    # the small CPU model sometimes declines: still a full trace (generate and redact_out ran)
    declined = body["refused"]
    assert not declined or body["refusal_reason"] == "model_declined", body
    assert body["redactions"], "the question's PII was redacted"
    spans = exporter.get_finished_spans()
    by_name: dict[str, ReadableSpan] = {}
    for span in spans:
        by_name.setdefault(span.name, span)

    # (a) the span tree: one trace, continuing the caller's, with every stage
    assert {format(s.context.trace_id, "032x") for s in spans} == {TRACEPARENT_TRACE}
    assert set(by_name) >= STAGES, sorted(by_name)
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert server.name.startswith("POST /v1/query")
    stage_ids = {by_name[n].context.span_id for n in STAGES}
    for name in ("embed", "search"):
        assert by_name[name].parent.span_id == by_name["retrieve"].context.span_id  # type: ignore[union-attr]
    for name in STAGES - {"embed", "search"}:
        parent = by_name[name].parent
        assert parent is not None and parent.span_id not in stage_ids, name
    search = _attrs(by_name["search"])
    assert search["holdfast.search.hits"] >= 1 and search["holdfast.search.groups"] == 1
    assert len(search["holdfast.search.scores"]) == search["holdfast.search.hits"]
    assembled = _attrs(by_name["assemble"])
    cited_chunks = [c["chunk_id"] for c in body["citations"]]
    assert assembled["holdfast.context.chunk_ids"]
    if not declined:
        assert list(assembled["holdfast.context.chunk_ids"]) == cited_chunks
    retrieve = _attrs(by_name["retrieve"])
    assert retrieve["holdfast.retrieval.status"] == "ok"
    assert retrieve["holdfast.retrieval.confidence"] == body["confidence"]
    generate = _attrs(by_name["generate"])
    assert generate["holdfast.alias"] == body["alias"] and generate["holdfast.model"]
    if body["usage"].get("completion_tokens"):
        assert generate["gen_ai.usage.output_tokens"] == body["usage"]["completion_tokens"]
    counted = [
        v
        for name in ("redact_in", "redact_out")
        for k, v in _attrs(by_name[name]).items()
        if k.startswith("holdfast.redactions.")
    ]
    assert sum(counted) == sum(body["redactions"].values())
    assert _attrs(by_name["auth"])["holdfast.auth.outcome"] == "ok"
    # W3C context goes out too: the model call is an httpx client span inside `generate`
    generate_id = by_name["generate"].context.span_id
    clients = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert any(s.parent is not None and s.parent.span_id == generate_id for s in clients), [
        (s.name, s.parent) for s in clients
    ]

    # (b) no planted value in any span, log line, metric or audit record
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    audit = client.get("/admin/audit", params={"limit": 500}, headers=auth)
    assert audit.status_code == 200
    records = audit.json()["records"]
    query_record = next(r for r in records if r["endpoint"] == "POST /v1/query")
    assert query_record["redactions"] == body["redactions"]
    assert query_record["decision"] == ("refused" if declined else "answered")
    assert declined or query_record["doc_ids"]  # a declined answer cites, and records, none
    log_text = logs.getvalue()
    log_lines = [json.loads(line) for line in log_text.splitlines() if line.strip()]
    assert any(line.get("request_id") for line in log_lines), "request lines carry their id"
    assert any(line.get("principal") == "obs-reader" for line in log_lines)
    assert any(line.get("trace_id") == TRACEPARENT_TRACE for line in log_lines)
    everything = {
        "spans": "\n".join(_everything_in(s) for s in [*ingest_spans, *spans]),
        "logs": log_text,
        "metrics": metrics.text,
        "audit": json.dumps(records),
    }
    for where, text in everything.items():
        for value in PLANTED:
            assert value.lower() not in text.lower(), f"{value!r} leaked into {where}"

    # metrics were fed by the query and the ingestion
    text = metrics.text
    assert 'holdfast_http_request_duration_seconds_count{endpoint="/v1/query"' in text
    assert 'holdfast_query_stage_duration_seconds_count{stage="generate"} 1.0' in text
    assert "holdfast_ingest_chunks_written_total" in text
    chunks = next(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("holdfast_ingest_chunks_written_total")
    )
    assert chunks >= 1
    assert 'holdfast_ingest_jobs{state="succeeded"} 1.0' in text
    assert 'holdfast_redactions_total{entity="PERSON",where="query"}' in text
    embedding = {
        line.split()[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("holdfast_query_embedding")
    }  # the question was embedded in-process, in a run of its own or a shared one
    runs = embedding["holdfast_query_embedding_runs_total"]
    assert 1 <= runs <= embedding["holdfast_query_embeddings_total"]
    vectors = {
        line.split()[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("holdfast_hit_vectors_")
    }  # the query's hits were scored with vectors kept from a search before, or fetched
    assert (
        vectors["holdfast_hit_vectors_kept_total"] + vectors["holdfast_hit_vectors_fetched_total"]
        >= 1
    )


def test_a_streamed_answer_is_traced_audited_and_counted(traced: Any) -> None:
    client, exporter, _, admin, reader = traced
    exporter.clear()
    with client.stream(
        "POST",
        "/v1/query",
        json={"question": "How many days of annual leave do employees get?", "stream": True},
        headers={"Authorization": f"Bearer {reader}", "X-Request-ID": "stream-1"},
    ) as response:
        assert response.status_code == 200
        events = [event.event for event in EventSource(response).iter_sse()]
    assert events[0] == "retrieval" and events[-1] == "done", events
    spans = exporter.get_finished_spans()
    (generate,) = [s for s in spans if s.name == "generate"]
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    assert generate.context.trace_id == server.context.trace_id
    assert _attrs(generate)["holdfast.stream"] is True
    records = client.get(
        "/admin/audit",
        params={"endpoint": "POST /v1/query"},
        headers={"Authorization": f"Bearer {admin}"},
    ).json()["records"]
    (record,) = [r for r in records if r["request_id"] == "stream-1"]
    assert record["decision"] in {"answered", "refused"} and record["doc_ids"]
    assert record["chunk_ids"]
