"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import ComponentsDep
from services.records import HealthStatus

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: str


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, Check]


@router.get("/healthz", response_model=Liveness)
async def get_liveness() -> Liveness:
    """The process is alive (it says nothing of its dependencies)."""
    return Liveness(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def get_readiness(components: ComponentsDep) -> JSONResponse:
    """Ready only when Weaviate, the chat model's server and the embedder all answer."""
    alias = components.settings.generation.chat_alias
    probes = await asyncio.gather(
        run_in_threadpool(components.store.health),
        run_in_threadpool(components.router.health, alias),
        run_in_threadpool(components.embedder.health),
    )
    checks = {
        p.name: Check(ok=p.ok, detail=p.detail) for p in probes if isinstance(p, HealthStatus)
    }
    if components.redactor is not None:
        loaded = components.redactor.health()
        checks["redactor"] = Check(ok=loaded, detail="" if loaded else "PII analyzer not loaded")
    ready = all(c.ok for c in checks.values())
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
