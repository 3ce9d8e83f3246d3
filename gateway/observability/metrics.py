"""Prometheus metrics, one ``CollectorRegistry`` per app (two apps in one process never mix).

Label values come from fixed vocabularies only: route templates, stage names, aliases from
models.yaml, refusal reasons, Presidio entity types, dependency names. ``label`` drops anything
else to ``other``, so no user text can ever become a label value.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.audit.records import decision_for_status
from gateway.observability.asgi import capture_status
from services.errors import (
    BackendTimeoutError,
    EmbedderUnavailableError,
    HoldfastError,
    ModelUnavailableError,
    RedactorUnavailableError,
    RerankerUnavailableError,
    StoreUnavailableError,
)

_TOKEN = re.compile(r"^[A-Za-z0-9_.:/{}\- ]{1,80}$")
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
JOB_STATES = ("queued", "running", "succeeded", "partial", "failed")
_DEPENDENCY_OF_CODE = {
    StoreUnavailableError.code: "weaviate",
    ModelUnavailableError.code: "llm",
    EmbedderUnavailableError.code: "embedder",
    RerankerUnavailableError.code: "reranker",
    RedactorUnavailableError.code: "presidio",
}


def label(value: object, allowed: frozenset[str] | None = None) -> str:
    """A safe label value: from ``allowed`` when given, else a short plain token; else other."""
    text = str(value)
    if allowed is not None:
        return text if text in allowed else "other"
    return text if _TOKEN.match(text) else "other"


def dependency_of(exc: HoldfastError) -> str | None:
    """Which upstream failed, for the errors that name one (timeouts say so in their code)."""
    if isinstance(exc, BackendTimeoutError):
        return "timeout"
    for kind, dependency in (
        (StoreUnavailableError, "weaviate"),
        (ModelUnavailableError, "llm"),
        (EmbedderUnavailableError, "embedder"),
        (RerankerUnavailableError, "reranker"),
        (RedactorUnavailableError, "presidio"),
    ):
        if isinstance(exc, kind):
            return dependency
    return None


class JobQueueCollector(Collector):
    """Ingestion jobs by state, asked of the job store at scrape time (SQLite or the shared
    PostgreSQL, whichever the jobs live in). A store that cannot answer reports zeros: a scrape
    must not fail because the database is down (the upstream-error counter says that)."""

    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "holdfast_ingest_jobs",
            "Ingestion jobs by state (queued = queue depth).",
            labels=["state"],
        )
        counts: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
        try:
            found = self._counts()
        except HoldfastError:
            found = {}
        for status, n in found.items():
            if status in counts:
                counts[status] = int(n)
        for state, n in counts.items():
            family.add_metric([state], n)
        yield family


class CounterPairCollector(Collector):
    """Two counters a component keeps itself, read at scrape time through ``read`` (None: the
    component keeps none, and nothing is reported). A component rebuilt by a reload starts at
    0 again, which ``rate()`` reads as a counter reset."""

    def __init__(
        self,
        read: Callable[[], tuple[int, int] | None],
        first: tuple[str, str],
        second: tuple[str, str],
    ) -> None:
        self._read = read
        self._names = (first, second)

    def collect(self) -> Iterator[CounterMetricFamily]:
        found = self._read()
        if found is None:
            return
        for (name, documentation), value in zip(self._names, found, strict=True):
            yield CounterMetricFamily(name, documentation, value=value)


# Concurrent search questions share in-process model runs; the ratio is the mean run size.
# Nothing is reported for an embedder that does not share runs (a remote server batches).
QUERY_EMBEDDING_COUNTERS = (
    ("holdfast_query_embedding_runs", "In-process model runs that embedded search questions."),
    (
        "holdfast_query_embeddings",
        "Search questions embedded in-process (divided by the runs: the mean run size).",
    ),
)
# Search hits scored with a stored vector the store kept (services/vector_cache.py), or fetched.
HIT_VECTOR_COUNTERS = (
    ("holdfast_hit_vectors_kept", "Search hits scored with a vector kept from an earlier search."),
    (
        "holdfast_hit_vectors_fetched",
        "Search hits whose vector was fetched from Weaviate (not kept yet).",
    ),
)


class GatewayMetrics:
    def __init__(
        self,
        job_counts: Callable[[], Mapping[str, int]] | None = None,
        query_embedding_runs: Callable[[], tuple[int, int] | None] | None = None,
        hit_vector_lookups: Callable[[], tuple[int, int] | None] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Histogram(
            "holdfast_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "endpoint", "status"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "holdfast_query_stage_duration_seconds",
            "Wall time of each query stage (redact_in, retrieve, rerank, assemble, generate...).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "holdfast_llm_tokens",
            "Tokens to and from the model, by alias.",
            ["alias", "direction"],
            registry=r,
        )
        self.decisions = Counter(
            "holdfast_query_decisions",
            "Query outcomes: answered, refused, denied, error, cancelled.",
            ["endpoint", "decision"],
            registry=r,
        )
        self.refusals = Counter(
            "holdfast_refusals", "Refused answers by reason.", ["reason"], registry=r
        )
        self.redactions = Counter(
            "holdfast_redactions",
            "PII values redacted, by entity type.",
            ["entity", "where"],
            registry=r,
        )
        self.chunks_written = Counter(
            "holdfast_ingest_chunks_written", "Chunks indexed by ingestion jobs.", registry=r
        )
        self.files_ingested = Counter(
            "holdfast_ingest_files",
            "Files processed by ingestion jobs, by outcome.",
            ["status"],
            registry=r,
        )
        self.upstream_errors = Counter(
            "holdfast_upstream_errors",
            "Failed calls to a backing service, by dependency.",
            ["dependency"],
            registry=r,
        )
        self.cancellations = Counter(
            "holdfast_query_cancellations",
            "Answers whose client went away before the end; their model call was stopped "
            "(or never started), freeing its slot on the model server.",
            ["endpoint"],
            registry=r,
        )
        self.audit_failures = Counter(
            "holdfast_audit_write_failures", "Audit records that could not be written.", registry=r
        )
        if job_counts is not None:
            r.register(JobQueueCollector(job_counts))
        if query_embedding_runs is not None:
            r.register(CounterPairCollector(query_embedding_runs, *QUERY_EMBEDDING_COUNTERS))
        if hit_vector_lookups is not None:
            r.register(CounterPairCollector(hit_vector_lookups, *HIT_VECTOR_COUNTERS))

    # --- feeding ------------------------------------------------------------------------------

    def observe_stages(self, timings_ms: Mapping[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stages.labels(label(stage)).observe(ms / 1000.0)

    def observe_tokens(self, alias: str, usage: Mapping[str, int]) -> None:
        if not alias:
            return
        for key, direction in (("prompt_tokens", "in"), ("completion_tokens", "out")):
            if usage.get(key):
                self.tokens.labels(label(alias), direction).inc(usage[key])

    def observe_redactions(self, counts: Mapping[str, int], where: str) -> None:
        for entity, n in counts.items():
            if n:
                self.redactions.labels(label(entity), where).inc(n)

    def observe_error(self, exc: HoldfastError) -> None:
        dependency = dependency_of(exc)
        if dependency is not None:
            self.upstream_errors.labels(dependency).inc()

    def observe_error_code(self, code: str) -> None:
        dependency = _DEPENDENCY_OF_CODE.get(code)
        if dependency is not None:
            self.upstream_errors.labels(dependency).inc()


class MetricsMiddleware:
    """Latency per route template; the query outcome from the request's audit context."""

    def __init__(
        self, app: ASGIApp, metrics: GatewayMetrics, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        start = self.clock()
        send, status = capture_status(send)
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "(no route)"
            self.metrics.requests.labels(scope["method"], label(route), str(status.code)).observe(
                self.clock() - start
            )
            outcome = (scope.get("state") or {}).get("audit")
            if outcome is not None and (outcome.decision or outcome.alias):  # query or search
                self.observe_outcome(f"{scope['method']} {route}", status.code, outcome)

    def observe_outcome(self, endpoint: str, status: int, outcome: Any) -> None:
        m = self.metrics
        decision = outcome.decision if status < 300 else decision_for_status(status)
        m.decisions.labels(label(endpoint), label(decision or "answered")).inc()
        if decision == "refused":
            m.refusals.labels(label(outcome.reason or "unknown")).inc()
        if decision == "error" and outcome.reason:
            m.observe_error_code(outcome.reason)
        if decision == "cancelled":
            m.cancellations.labels(label(endpoint)).inc()
        m.observe_stages(outcome.timings_ms)
        m.observe_tokens(outcome.alias, outcome.usage)
        m.observe_redactions(outcome.redactions, "query")
