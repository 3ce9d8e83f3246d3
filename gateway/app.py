"""``create_app(settings)``: the FastAPI application.

Clients open in the lifespan, not on import."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from gateway.container import Components, build_components
from gateway.ingest_jobs import build_ingest_service
from gateway.model_reload import reload_models
from gateway.model_watch import ModelFileWatcher
from gateway.problems import install_body_limit, install_problem_handlers
from gateway.routes import admin, documents, health, jobs, openai_compat, query
from gateway.settings import Settings

BOOTSTRAP_ADMIN_KEY_ENV = "HOLDFAST_BOOTSTRAP_ADMIN_KEY"


def _bootstrap_admin_key(components: Components) -> None:
    """Register an admin key handed in by the platform (e.g. a Kubernetes Secret)."""
    key = os.environ.get(BOOTSTRAP_ADMIN_KEY_ENV)
    if key:
        components.keys.import_key(
            key, "admin", groups=["admin"], roles=["admin", "ingest", "query"]
        )


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = components or build_components(settings)
        await run_in_threadpool(built.warm_up)
        _bootstrap_admin_key(built)
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
        app.state.ingest = build_ingest_service(built)
        app.state.ingest.worker.start()  # resumes jobs a previous process left unfinished
        try:
            yield
        finally:
            app.state.ingest.close()
            await watcher.stop()
            built.close()

    app = FastAPI(
        title="Holdfast gateway",
        version="0.1.0",
        description="Grounded answers from your own documents, on your own hardware.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    ingestion = settings.ingestion
    upload_bytes = int(ingestion.max_file_mb * 1024 * 1024) * ingestion.max_files_per_job
    install_body_limit(app, settings.limits.max_body_bytes, {"/v1/documents": upload_bytes})
    app.include_router(health.router)
    app.include_router(query.router)
    app.include_router(openai_compat.router)
    app.include_router(admin.router)
    app.include_router(documents.router)
    app.include_router(jobs.router)
    return app
