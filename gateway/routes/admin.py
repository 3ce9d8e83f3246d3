"""Administration: reload ``models.yaml`` and read the record of model changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway.deps import ComponentsDep, require_role
from gateway.keys import Principal
from gateway.model_reload import reload_models

router = APIRouter(prefix="/admin", tags=["admin"])
AdminPrincipalDep = Annotated[Principal, Depends(require_role("admin"))]


class ReloadResponse(BaseModel):
    swapped: bool
    version: int
    digest: str
    changes: dict[str, str]
    probed: list[str]


class ModelChangeOut(BaseModel):
    at: str
    actor: str
    trigger: str
    outcome: str
    changes: dict[str, str]
    detail: str


@router.post("/reload", response_model=ReloadResponse)
async def reload_model_config(
    principal: AdminPrincipalDep, components: ComponentsDep
) -> ReloadResponse:
    """Validate and probe models.yaml, then swap to it; 422 with the reason if it is invalid."""
    result = await run_in_threadpool(
        reload_models,
        components.settings,
        components.registry,
        components.audit,
        actor=principal.name,
        trigger="api",
        store=components.store,
    )
    return ReloadResponse(
        swapped=result.swapped,
        version=result.version,
        digest=result.digest,
        changes=result.changes,
        probed=result.probed,
    )


@router.get("/model-changes", response_model=list[ModelChangeOut])
async def list_model_changes(
    principal: AdminPrincipalDep, components: ComponentsDep, limit: int = 50
) -> list[ModelChangeOut]:
    """The most recent model swaps and rejected reloads, newest first."""
    changes = await run_in_threadpool(components.audit.recent, min(max(limit, 1), 500))
    return [
        ModelChangeOut(
            at=c.at.isoformat(),
            actor=c.actor,
            trigger=c.trigger,
            outcome=c.outcome,
            changes=c.changes,
            detail=c.detail,
        )
        for c in changes
    ]
