"""Administration: reload ``models.yaml``, read the record of model changes and the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import ComponentsDep, require_role
from gateway.audit.records import MAX_PAGE, build_filter
from gateway.models.reload import reload_models
from gateway.security.keys import Principal

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


class AuditRecordOut(BaseModel):
    id: int
    at: str
    kind: str = Field(description="request | admin")
    principal: str
    endpoint: str = Field(description="METHOD /route/template, or where an admin action ran.")
    decision: str = Field(description="answered | refused | denied | error")
    action: str = Field(description="Admin actions: key.created, model.swapped, ...")
    status: int = Field(description="HTTP status; 0 outside HTTP.")
    request_id: str
    groups: list[str] = Field(description="The access filter applied: the caller's groups.")
    doc_ids: list[str]
    chunk_ids: list[str]
    alias: str
    model: str
    redactions: dict[str, int] = Field(description="PII values redacted, by entity type.")
    reason: str
    detail: dict[str, str]


class AuditPageOut(BaseModel):
    records: list[AuditRecordOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


@router.get("/audit", response_model=AuditPageOut)
async def list_audit_records(
    principal: AdminPrincipalDep,
    components: ComponentsDep,
    limit: Annotated[int, Query(description=f"Records per page (1..{MAX_PAGE}).")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    who: Annotated[str | None, Query(alias="principal", description="Principal name.")] = None,
    decision: Annotated[
        str | None, Query(description="answered|refused|denied|error|cancelled")
    ] = None,
    endpoint: Annotated[str | None, Query(description="e.g. 'POST /v1/query'.")] = None,
    kind: Annotated[str | None, Query(description="request | admin")] = None,
    since: Annotated[str | None, Query(description="ISO 8601, inclusive.")] = None,
    until: Annotated[str | None, Query(description="ISO 8601, inclusive.")] = None,
) -> AuditPageOut:
    """The audit log, newest first, one page at a time; 400 on a bad filter or cursor."""
    flt = build_filter(
        limit=limit,
        cursor=cursor,
        principal=who,
        decision=decision,
        endpoint=endpoint,
        kind=kind,
        since=since,
        until=until,
    )
    page = await run_in_threadpool(components.audit_log.query, flt)
    return AuditPageOut(
        records=[AuditRecordOut.model_validate(r.as_dict()) for r in page.records],
        next_cursor=page.next_cursor,
    )
