"""Documents: upload for ingestion (an async job), list what the caller may see, delete."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway.api.audit_middleware import audit_context
from gateway.api.deps import ComponentsDep, PrincipalDep
from gateway.components import IngestService
from gateway.models.write_fence import WRITER_WAIT_S, WriteFence, writing
from gateway.security.keys import Principal
from gateway.settings import RedactionSettings
from ingestion.jobs import NewFile, new_job_id
from ingestion.upload_fields import redact_metadata, redact_names
from services.errors import AccessDeniedError, InvalidRequestError, NotFoundError
from services.ports import DocumentStore
from services.redaction_profile import RedactionProfile, profile_for_groups

router = APIRouter(prefix="/v1", tags=["ingestion"])
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_CHUNK = 1 << 20
MAX_UPLOAD_JSON_DEPTH = 32  # lists and objects in an upload field (metadata is a few tags)


async def require_ingest(principal: PrincipalDep) -> Principal:
    if not principal.roles & {"ingest", "admin"}:
        raise AccessDeniedError("ingesting needs the 'ingest' or 'admin' role")
    return principal


IngestPrincipalDep = Annotated[Principal, Depends(require_ingest)]


class JobAccepted(BaseModel):
    job_id: str


class DocumentOut(BaseModel):
    doc_id: str
    source: str
    title: str
    doc_type: str
    access_groups: list[str]
    ingested_at: datetime | None


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    limit: int
    offset: int
    next_offset: int | None


class Deleted(BaseModel):
    doc_id: str
    chunks_deleted: int


def _service(request: Request) -> IngestService:
    return request.app.state.ingest  # type: ignore[no-any-return]


class _NonFiniteNumberError(ValueError):
    """NaN, Infinity or a number past float range (1e999): Python's JSON reader takes them as
    floats no JSON response can carry."""


def _refuse_non_finite(text: str) -> Any:
    raise _NonFiniteNumberError(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFiniteNumberError(text)
    return value


def _nesting_depth(value: Any) -> int:
    """How deep lists and objects nest in ``value``; iterative, so any depth is safe to measure."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep(field: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{field}: nested deeper than {MAX_UPLOAD_JSON_DEPTH} levels; send a flatter value"
    )


def _load_upload_json(raw: str, field: str) -> Any:
    """An upload field as strict, shallow JSON, refused with a 400 up front: NaN would be kept
    and read back as null, and a value nested past what the job response can serialize would
    leave the job unreadable."""
    try:
        value = json.loads(raw, parse_constant=_refuse_non_finite, parse_float=_finite_float)
    except _NonFiniteNumberError as exc:
        raise InvalidRequestError(
            f"{field}: {exc} is not a finite number; send a finite number, a string or null"
        ) from exc
    except RecursionError as exc:
        raise _too_deep(field) from exc
    except ValueError as exc:
        raise InvalidRequestError(f"{field}: not valid JSON") from exc
    if _nesting_depth(value) > MAX_UPLOAD_JSON_DEPTH:
        raise _too_deep(field)
    return value


def _parse_groups(raw: str) -> list[str]:
    raw = raw.strip()
    if raw.startswith("["):
        values = _load_upload_json(raw, "access_groups")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidRequestError("access_groups: a list of strings is expected")
    else:
        values = raw.split(",")
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def _parse_metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    value = _load_upload_json(raw, "metadata")
    if not isinstance(value, dict):
        raise InvalidRequestError("metadata: a JSON object is expected")
    return value


def _upload_profile(
    requested: RedactionProfile | None,
    redact: bool,
    groups: Sequence[str],
    config: RedactionSettings,
    principal: Principal,
) -> RedactionProfile:
    """The upload's redaction profile; only an admin may index raw PII."""
    if not redact:
        if requested not in (None, RedactionProfile.NONE):
            raise InvalidRequestError(
                f"redact=false contradicts redaction_profile={requested.value}; send one of them"
            )
        requested = RedactionProfile.NONE
    if requested is RedactionProfile.NONE and "admin" not in principal.roles:
        raise AccessDeniedError(
            "indexing without redaction needs the admin role; upload with redaction_profile="
            "strict or structured"
        )
    if not config.enabled:
        return RedactionProfile.NONE
    return requested or profile_for_groups(groups, config.default_profile, config.group_profiles)


def _visible(principal: Principal) -> list[str] | None:
    return None if "admin" in principal.roles else list(principal.groups)


@router.post("/documents", status_code=202, response_model=JobAccepted)
async def create_documents(
    request: Request,
    components: ComponentsDep,
    principal: IngestPrincipalDep,
    files: Annotated[list[UploadFile], File(description="One or more documents.")],
    access_groups: Annotated[str, Form(description="Comma-separated or a JSON list.")] = "",
    metadata: Annotated[str | None, Form(description="A JSON object kept with the job.")] = None,
    redact: Annotated[
        bool, Form(description="false is the same as redaction_profile=none (admins only).")
    ] = True,
    redaction_profile: Annotated[
        RedactionProfile | None,
        Form(
            description="strict (every PII type, names included), structured (only shaped "
            "values: e-mail, phone, SSN, card, IBAN, secrets) or none (admins only). Default: "
            "the strictest configured for the upload's access groups."
        ),
    ] = None,
) -> JobAccepted:
    """Queue files for ingestion; poll GET /v1/jobs/{job_id} for progress."""
    service = _service(request)
    settings = components.settings
    groups = _parse_groups(access_groups)
    if not groups:
        if settings.ingestion.default_group is None:
            raise InvalidRequestError("access_groups is required (no default group is configured)")
        groups = [settings.ingestion.default_group]
    if "admin" not in principal.roles:
        foreign = sorted(set(groups) - set(principal.groups))
        if foreign:
            raise AccessDeniedError(
                f"you may only assign your own groups; not {len(foreign)} of them"
            )
    profile = _upload_profile(redaction_profile, redact, groups, settings.redaction, principal)
    audit_context(request.state).reason = f"redaction_{profile.value}"  # raw uploads stand out
    extra = await run_in_threadpool(
        redact_metadata, _parse_metadata(metadata), components.redactor, profile, service.identity
    )
    if not files:
        raise InvalidRequestError("no files")
    if len(files) > settings.ingestion.max_files_per_job:
        raise InvalidRequestError(
            f"{len(files)} files, more than the limit {settings.ingestion.max_files_per_job}"
        )
    job_id = new_job_id()
    job_dir = service.uploads / job_id
    job_dir.mkdir(parents=True, exist_ok=True)
    staged: list[NewFile] = []
    limit = service.limits.max_file_bytes
    # a file name is stored (index, jobs, citations): redacted like the document it names
    sources = await run_in_threadpool(
        redact_names,
        [(upload.filename or f"upload-{idx}").strip()[:1024] for idx, upload in enumerate(files)],
        components.redactor,
        profile,
        service.identity,
    )
    for idx, (upload, source) in enumerate(zip(files, sources, strict=True)):
        # the staged name keeps only the type suffix: a file name may itself be personal data
        target = job_dir / f"{idx:05d}{_SAFE.sub('_', PurePosixPath(source).suffix)[:16]}"
        size, reason = 0, ""
        with target.open("wb") as fh:
            while block := await upload.read(_CHUNK):
                size += len(block)
                if size > limit:
                    reason = f"file is over the limit of {limit} bytes"
                    break
                fh.write(block)
        if reason:
            target.unlink(missing_ok=True)
        staged.append(NewFile(source=source, path=str(target), rejected_reason=reason))
    await run_in_threadpool(
        functools.partial(
            service.jobs.create,
            owner=principal.key_id,
            groups=groups,
            redaction=profile,
            metadata=extra,
            files=staged,
            writer_groups=_visible(principal),
            job_id=job_id,
        )
    )
    service.worker.notify()
    return JobAccepted(job_id=job_id)


@router.get("/documents", response_model=DocumentPage)
async def list_documents(
    components: ComponentsDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=9_000)] = 0,  # Weaviate pages at most 10,000 deep
) -> DocumentPage:
    """One page of the documents the caller may read."""
    docs = await run_in_threadpool(
        components.store.documents, groups=_visible(principal), limit=limit + 1, offset=offset
    )
    return DocumentPage(
        documents=[
            DocumentOut(
                doc_id=d.doc_id,
                source=d.source,
                title=d.title,
                doc_type=d.doc_type,
                access_groups=list(d.access_groups),
                ingested_at=d.ingested_at,
            )
            for d in docs[:limit]
        ],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if len(docs) > limit else None,
    )


def _fenced_delete(store: DocumentStore, fence: WriteFence, doc_id: str) -> int:
    """Delete under a write lease: while a reindex switches collections, wait a little, then
    refuse with 503 ``writes_fenced`` and Retry-After (a delete must not land in the collection
    being left)."""
    with writing(fence, "DELETE /v1/documents", wait_s=WRITER_WAIT_S):
        return store.delete_document(doc_id)


@router.delete("/documents/{doc_id}", response_model=Deleted)
async def delete_document(
    request: Request, doc_id: str, components: ComponentsDep, principal: IngestPrincipalDep
) -> Deleted:
    """Delete a document and all its chunks."""
    info = await run_in_threadpool(components.store.document, doc_id)
    visible = _visible(principal)
    if info is None or (visible is not None and not set(info.access_groups) & set(visible)):
        raise NotFoundError("no such document")
    if visible is not None and not set(info.access_groups) <= set(visible):
        raise AccessDeniedError("the document belongs to groups you are not in")
    fence = _service(request).write_fence
    deleted = await run_in_threadpool(_fenced_delete, components.store, fence, doc_id)
    return Deleted(doc_id=doc_id, chunks_deleted=deleted)
