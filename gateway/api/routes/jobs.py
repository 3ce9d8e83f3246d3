"""Ingest job status: progress and per-file results, for the job's owner or an admin."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import PrincipalDep
from gateway.components import IngestService
from services.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["ingestion"])


class JobFileOut(BaseModel):
    source: str
    status: str
    doc_id: str
    chunks: int
    reason: str
    redactions: dict[str, int]


class JobOut(BaseModel):
    job_id: str
    status: str
    files_total: int
    files_done: int
    chunks_written: int
    access_groups: list[str]
    redact: bool
    redaction_profile: str
    metadata: dict[str, Any]
    created_at: str
    finished_at: str | None
    files: list[JobFileOut]


def ingest_service(request: Request) -> IngestService:
    return request.app.state.ingest  # type: ignore[no-any-return]


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: str, request: Request, principal: PrincipalDep) -> JobOut:
    """Status of one ingest job."""
    job = await run_in_threadpool(ingest_service(request).jobs.get, job_id)
    if job.owner != principal.key_id and "admin" not in principal.roles:
        raise NotFoundError("no such job")  # do not reveal other callers' jobs
    return JobOut(
        job_id=job.job_id,
        status=job.status,
        files_total=len(job.files),
        files_done=job.files_done,
        chunks_written=job.chunks_written,
        access_groups=list(job.groups),
        redact=job.redact,
        redaction_profile=job.redaction.value,
        metadata=job.metadata,
        created_at=job.created_at,
        finished_at=job.finished_at,
        files=[
            JobFileOut(
                source=f.source,
                status=f.status,
                doc_id=f.doc_id,
                chunks=f.chunks,
                reason=f.reason,
                redactions=f.redactions,
            )
            for f in job.files
        ],
    )
