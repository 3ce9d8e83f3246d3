"""``create_app(settings, wiring=...)``: the FastAPI application.

The app names no adapter: the composition root (``gateway.main.create_default_app``) passes in
how to build the components and the ingest service, and clients open in the lifespan, not on
import."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from gateway.api.audit_middleware import AuditMiddleware
from gateway.api.body_limit import BodyLimitMiddleware
from gateway.api.deps import rate_limited
from gateway.api.problems import install_problem_handlers
from gateway.api.routes import admin, documents, health, jobs, keys, openai_compat, query
from gateway.audit.buffered import BufferedAuditLog
from gateway.audit.records import AuditRecord
from gateway.audit.store import AuditLog
from gateway.components import Components, IngestService
from gateway.models.reload import reload_models
from gateway.models.watch import ModelFileWatcher
from gateway.observability.metrics import GatewayMetrics, MetricsMiddleware
from gateway.observability.request_context import RequestIdMiddleware
from gateway.observability.tracing import (
    build_tracer_provider,
    install_globally,
    instrument,
    tracer_of,
)
from gateway.security.keys import KEY_PREFIX
from gateway.settings import Settings
from services.errors import AccessDeniedError, AuthenticationError, ConfigError, HoldfastError

BOOTSTRAP_ADMIN_KEY_ENV = "HOLDFAST_BOOTSTRAP_ADMIN_KEY"


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the composition root hands the app: how to build its components from settings (in
    the lifespan, unless components are passed in) and the ingest service over them."""

    build_components: Callable[[Settings], Components]
    build_ingest: Callable[[Components, GatewayMetrics, Tracer], IngestService]


def _bootstrap_admin_key(components: Components) -> None:
    """Register an admin key handed in by the platform (e.g. a Kubernetes Secret). A key
    without the ``hf_`` prefix would be stored and then refused on every request, so the
    gateway does not start with one."""
    key = os.environ.get(BOOTSTRAP_ADMIN_KEY_ENV)
    if key and not key.startswith(KEY_PREFIX):
        raise ConfigError(
            f"{BOOTSTRAP_ADMIN_KEY_ENV} must start with {KEY_PREFIX!r}: the gateway accepts no "
            f"other key; make one with: echo {KEY_PREFIX}$(openssl rand -hex 32)"
        )
    if key:
        key_id = components.keys.import_key(
            key, "admin", groups=["admin"], roles=["admin", "ingest", "query"]
        )
        components.audit_log.append(
            AuditRecord(
                kind="admin",
                principal="system",
                endpoint="startup",
                decision="answered",
                action="key.imported",
                groups=("admin",),
                detail={"key_id": key_id},
            )
        )


def _audit_log(app: FastAPI) -> AuditLog | None:
    components: Components | None = getattr(app.state, "components", None)
    return components.audit_log if components is not None else None


def _job_counts(app: FastAPI) -> dict[str, int]:
    ingest: IngestService | None = getattr(app.state, "ingest", None)
    return ingest.jobs.counts_by_status() if ingest is not None else {}


def _component_counts(app: FastAPI, part: str, counts: str) -> tuple[int, int] | None:
    """The pair of counts the loaded component ``part`` (``embedder``, ``store``) keeps under
    ``counts``, if it keeps them (an embedder that shares runs, a store that keeps vectors)."""
    components: Components | None = getattr(app.state, "components", None)
    if components is None:
        return None
    found = getattr(getattr(components, part), counts, None)
    return found if isinstance(found, tuple) else None


def _count_upstream_errors(app: FastAPI, metrics: GatewayMetrics) -> None:
    """Count failures of backing services on their way to the problem+json handler, and note
    the error's code for the audit record."""
    handler = app.exception_handlers[HoldfastError]

    async def _counted(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HoldfastError):
            metrics.observe_error(exc)
            request.state.error_code = exc.code  # the audit record's reason (a fixed code)
        result = handler(request, exc)
        return await result if inspect.isawaitable(result) else result

    app.add_exception_handler(HoldfastError, _counted)


def _metrics_route(app: FastAPI, metrics: GatewayMetrics, *, require_admin: bool) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def get_metrics(request: Request) -> Response:
        """Prometheus text format; with metrics.require_auth, an admin key is needed."""
        if require_admin:
            header = request.headers.get("authorization", "")
            token = header[7:].strip() if header.lower().startswith("bearer ") else ""
            if not token:
                raise AuthenticationError("send Authorization: Bearer <admin key>")
            components: Components = request.app.state.components
            principal = await run_in_threadpool(components.authenticator.authenticate, token)
            if "admin" not in principal.roles:
                raise AccessDeniedError("metrics need the 'admin' role")
            await rate_limited(principal, components)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(
    settings: Settings,
    components: Components | None = None,
    tracer_provider: TracerProvider | None = None,
    *,
    wiring: Wiring,
) -> FastAPI:
    """``wiring`` builds the components (unless given) and the ingest service;
    ``tracer_provider`` overrides the one the telemetry settings describe (tests pass an
    in-memory exporter's)."""
    provider = tracer_provider or build_tracer_provider(settings.telemetry)
    if provider is not None and tracer_provider is None:
        install_globally(provider)
    tracer = tracer_of(provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = components or wiring.build_components(settings)
        await run_in_threadpool(partial(built.warm_up, wait_for_store=True))
        _bootstrap_admin_key(built)
        buffered = BufferedAuditLog(built.audit_log, on_failure=metrics.audit_failures.inc)
        built.audit_log = buffered  # requests only enqueue their record
        app.state.components = built
        watcher = ModelFileWatcher(
            settings.models_path,
            lambda trigger: reload_models(
                settings,
                built.registry,
                built.audit,
                actor="system",
                trigger=trigger,
                store=built.store,
            ),
        )
        watcher.start()
        app.state.ingest = wiring.build_ingest(built, metrics, tracer)
        if settings.ingestion.run_in_gateway:  # else `holdfast worker` processes run the jobs
            app.state.ingest.worker.start()  # resumes jobs a previous process left unfinished
        try:
            yield
        finally:
            app.state.ingest.close()
            await watcher.stop()
            await run_in_threadpool(buffered.close)
            built.audit_log = buffered.inner
            built.close()
            if provider is not None:
                provider.force_flush(5_000)

    app = FastAPI(
        title="Holdfast gateway",
        version="0.1.0",
        description="Grounded answers from your own documents, on your own hardware.",
        lifespan=lifespan,
        # the gateway traces itself (``instrument`` below, URLs reduced to route templates);
        # FastAPI's own OpenTelemetry would look up the global providers on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.tracer = tracer
    install_problem_handlers(app)
    metrics = GatewayMetrics(
        job_counts=lambda: _job_counts(app),
        query_embedding_runs=lambda: _component_counts(app, "embedder", "query_batches"),
        hit_vector_lookups=lambda: _component_counts(app, "store", "hit_vector_lookups"),
    )
    app.state.metrics = metrics
    _count_upstream_errors(app, metrics)
    if settings.metrics.enabled:
        _metrics_route(app, metrics, require_admin=settings.metrics.require_auth)
    ingestion = settings.ingestion
    upload_bytes = int(ingestion.max_file_mb * 1024 * 1024) * ingestion.max_files_per_job
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.limits.max_body_bytes,
        upload_limits={"/v1/documents": upload_bytes},
    )
    app.add_middleware(
        AuditMiddleware, get_log=lambda: _audit_log(app), on_failure=metrics.audit_failures.inc
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(health.router)
    app.include_router(query.router)
    app.include_router(openai_compat.router)
    app.include_router(admin.router)
    app.include_router(keys.router)
    # query, models and admin routes take their token in require_role; these take it here
    app.include_router(documents.router, dependencies=[Depends(rate_limited)])
    app.include_router(jobs.router, dependencies=[Depends(rate_limited)])
    if provider is not None:
        instrument(app, provider)  # a server span around everything below
    app.add_middleware(RequestIdMiddleware)  # outermost: every layer below sees the id
    return app
