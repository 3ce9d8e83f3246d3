"""Prometheus metrics: safe label values, route templates not raw paths, job queue depth."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from gateway.api.audit_middleware import AuditMiddleware, audit_context
from gateway.observability.metrics import GatewayMetrics, MetricsMiddleware, label
from ingestion.jobs import JobStore, NewFile
from services.errors import ModelUnavailableError, StoreUnavailableError
from services.redaction_profile import RedactionProfile

pytestmark = pytest.mark.unit


def test_label_keeps_plain_tokens_and_drops_anything_else() -> None:
    assert label("POST /v1/documents/{doc_id}") == "POST /v1/documents/{doc_id}"
    assert label("EMAIL_ADDRESS") == "EMAIL_ADDRESS"
    assert label("jane@example.com") == "other"
    assert label("x" * 200) == "other"
    assert label("chat-default", frozenset({"other-alias"})) == "other"


def test_two_apps_never_share_a_registry() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.chunks_written.inc(3)
    assert b.registry.get_sample_value("holdfast_ingest_chunks_written_total") == 0.0
    assert a.registry.get_sample_value("holdfast_ingest_chunks_written_total") == 3.0


def test_upstream_errors_are_counted_by_dependency() -> None:
    m = GatewayMetrics()
    m.observe_error(StoreUnavailableError("down"))
    m.observe_error(ModelUnavailableError("down"))
    m.observe_error_code("model_unavailable")
    get = m.registry.get_sample_value
    assert get("holdfast_upstream_errors_total", {"dependency": "weaviate"}) == 1.0
    assert get("holdfast_upstream_errors_total", {"dependency": "llm"}) == 2.0


def test_job_queue_depth_is_asked_of_the_job_store(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    m = GatewayMetrics(job_counts=store.counts_by_status)
    assert m.registry.get_sample_value("holdfast_ingest_jobs", {"state": "queued"}) == 0.0
    created = [
        store.create(
            owner="alice",
            groups=["eng"],
            redaction=RedactionProfile.STRICT,
            metadata={},
            files=[NewFile(source="a.md", path="")],
            writer_groups=None,
        )
        for _ in range(3)
    ]
    lease = store.claim("worker-1", lease_s=60, max_attempts=3)
    assert lease is not None and lease.job_id in created
    assert m.registry.get_sample_value("holdfast_ingest_jobs", {"state": "queued"}) == 2.0
    assert m.registry.get_sample_value("holdfast_ingest_jobs", {"state": "running"}) == 1.0


def test_a_job_store_that_cannot_answer_reports_zeros_instead_of_failing_the_scrape() -> None:
    def down() -> dict[str, int]:
        raise StoreUnavailableError("the job database is down")

    m = GatewayMetrics(job_counts=down)
    assert b"holdfast_ingest_jobs" in generate_latest(m.registry)
    assert m.registry.get_sample_value("holdfast_ingest_jobs", {"state": "queued"}) == 0.0


@pytest.mark.parametrize(
    ("source", "first", "second", "absent"),
    [
        # an embedder that shares runs; one that does not (a remote server batches) reports none
        (
            "query_embedding_runs",
            "holdfast_query_embedding_runs_total",
            "holdfast_query_embeddings_total",
            b"holdfast_query_embedding",
        ),
        # a store that keeps hit vectors; with hit_vector_cache 0 it reports none
        (
            "hit_vector_lookups",
            "holdfast_hit_vectors_kept_total",
            "holdfast_hit_vectors_fetched_total",
            b"holdfast_hit_vectors",
        ),
    ],
)
def test_a_component_s_own_counts_are_read_at_scrape_time_and_absent_when_it_keeps_none(
    source: str, first: str, second: str, absent: bytes
) -> None:
    counts: list[tuple[int, int] | None] = [(3, 8)]
    m = GatewayMetrics(**{source: lambda: counts[0]})  # type: ignore[arg-type]
    get = m.registry.get_sample_value
    assert get(first) == 3.0
    assert get(second) == 8.0
    counts[0] = None
    assert absent not in generate_latest(m.registry)


def test_middleware_labels_route_templates_and_query_outcomes() -> None:
    m = GatewayMetrics()
    app = FastAPI()
    app.add_middleware(AuditMiddleware, get_log=lambda: None)
    app.add_middleware(MetricsMiddleware, metrics=m)

    @app.get("/docs-of/{who}")
    def docs_of(who: str, request: Request) -> dict[str, str]:
        ctx = audit_context(request.state)
        ctx.alias, ctx.decision, ctx.reason = "chat-default", "refused", "low_confidence"
        ctx.timings_ms = {"redact_in": 3.0, "retrieve": 40.0}
        ctx.usage = {"prompt_tokens": 100, "completion_tokens": 7}
        ctx.redactions = {"PERSON": 2}
        return {"who": "x"}

    TestClient(app).get("/docs-of/jane.doe@example.com")
    text = generate_latest(m.registry).decode()
    assert 'endpoint="/docs-of/{who}"' in text and "jane" not in text
    get = m.registry.get_sample_value
    assert get("holdfast_refusals_total", {"reason": "low_confidence"}) == 1.0
    assert get("holdfast_llm_tokens_total", {"alias": "chat-default", "direction": "in"}) == 100
    assert get("holdfast_redactions_total", {"entity": "PERSON", "where": "query"}) == 2.0
    assert get("holdfast_query_stage_duration_seconds_count", {"stage": "retrieve"}) == 1.0
