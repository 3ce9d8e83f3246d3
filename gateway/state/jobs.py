"""Ingest jobs and their uploads in the shared PostgreSQL, for several gateways and workers.

Uploads are stored as ``bytea`` rows (``job_uploads``), one per accepted file, never larger than
``ingestion.max_file_mb`` (the upload route refuses bigger files before they get here). Why the
database and not a volume: every gateway and worker already reaches PostgreSQL, while a volume
every pod mounts read-write (RWX) is what most on-premise clusters lack. A worker materialises a
file into its own spool directory just before its batch runs, and the bytes are dropped once the
job finishes.

A job is claimed in one conditional UPDATE, so two gateways never run the same job at once; a
running job whose claim has not been renewed (each recorded file renews it) for ``lease_s``
(its worker died) is claimed again and resumes at its pending files, as on one host.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, func, insert, or_, select, update

from gateway.state.engine import guarded
from gateway.state.schema import job_files, job_uploads, jobs
from ingestion.jobs import (
    ALL_GROUPS,
    Job,
    JobFile,
    NewFile,
    final_status,
    job_from_rows,
    new_job_id,
)
from services.errors import HoldfastError, NotFoundError
from services.redaction_profile import RedactionProfile

DEFAULT_LEASE_S = 600.0


class JobTakenError(HoldfastError):
    code, title = "job_taken", "Another worker runs this job"


class PostgresJobStore:
    def __init__(self, engine: Engine, *, spool: Path, lease_s: float = DEFAULT_LEASE_S) -> None:
        self._engine = engine
        self._spool = spool
        self._lease = timedelta(seconds=lease_s)

    @guarded
    def create(
        self,
        *,
        owner: str,
        groups: Sequence[str],
        redaction: RedactionProfile,
        metadata: dict[str, Any],
        files: Sequence[NewFile],
        writer_groups: Sequence[str] | None,
        job_id: str | None = None,
    ) -> str:
        """Queue a job, its files and their bytes in one transaction (no worker sees it half);
        the staged local copies are removed once their bytes are in the database."""
        job_id = job_id or new_job_id()
        with self._engine.begin() as conn:
            conn.execute(
                insert(jobs).values(
                    job_id=job_id,
                    owner=owner,
                    status="queued",
                    groups=json.dumps(list(groups)),
                    redact=int(redaction is not RedactionProfile.NONE),
                    redaction_profile=redaction.value,
                    writer_groups=json.dumps(
                        ALL_GROUPS if writer_groups is None else list(writer_groups)
                    ),
                    metadata=json.dumps(metadata),
                    created_at=_now(),
                )
            )
            if files:
                conn.execute(
                    insert(job_files),
                    [
                        {
                            "job_id": job_id,
                            "idx": i,
                            "source": f.source,
                            "path": f.path,
                            "status": "rejected" if f.rejected_reason else "pending",
                            "reason": f.rejected_reason,
                        }
                        for i, f in enumerate(files)
                    ],
                )
            for i, f in enumerate(files):  # one file in memory at a time
                if not f.rejected_reason:
                    content = Path(f.path).read_bytes()
                    conn.execute(insert(job_uploads).values(job_id=job_id, idx=i, content=content))
        _remove_staged(files)
        return job_id

    @guarded
    def get(self, job_id: str) -> Job:
        with self._engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).first()
            if row is None:
                raise NotFoundError("no such job")
            files = conn.execute(
                select(job_files).where(job_files.c.job_id == job_id).order_by(job_files.c.idx)
            ).all()
        return job_from_rows(dict(row._mapping), (dict(f._mapping) for f in files))

    @guarded
    def counts_by_status(self) -> dict[str, int]:
        query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        with self._engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(query).all()}

    @guarded
    def next_runnable(self) -> str | None:
        """The oldest queued job, or a running one whose worker stopped renewing its claim.
        Only a look (``holdfast reindex`` asks it too): ``mark_running`` takes the claim."""
        query = (
            select(jobs.c.job_id)
            .where(self._claimable())
            .order_by(jobs.c.created_at, jobs.c.job_id)
            .limit(1)
        )
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    @guarded
    def mark_running(self, job_id: str) -> None:
        """Claim the job for this worker in one statement: of two gateways that saw the same
        job, exactly one gets it; the other gets ``JobTakenError`` and looks again."""
        claim = (
            update(jobs)
            .where(jobs.c.job_id == job_id, self._claimable())
            .values(status="running", claimed_at=func.now())
            .returning(jobs.c.job_id)
        )
        with self._engine.begin() as conn:
            won = conn.execute(claim).scalar_one_or_none()
        if won is None:
            raise JobTakenError(f"job {job_id} is run by another worker or finished")

    def _claimable(self) -> ColumnElement[bool]:
        stale = func.now() - self._lease
        return or_(
            jobs.c.status == "queued",
            and_(
                jobs.c.status == "running",
                or_(jobs.c.claimed_at.is_(None), jobs.c.claimed_at < stale),
            ),
        )

    @guarded
    def record_file(
        self,
        job_id: str,
        idx: int,
        *,
        status: str,
        doc_id: str = "",
        chunks: int = 0,
        reason: str = "",
        redactions: dict[str, int] | None = None,
    ) -> None:
        """Record one file's outcome and renew the job's claim (the worker is alive)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(job_files)
                .where(job_files.c.job_id == job_id, job_files.c.idx == idx)
                .values(
                    status=status,
                    doc_id=doc_id,
                    chunks=chunks,
                    reason=reason,
                    redactions=json.dumps(redactions or {}),
                )
            )
            conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(claimed_at=func.now()))

    @guarded
    def finish(self, job_id: str) -> str:
        status = final_status(self.get(job_id).files)
        with self._engine.begin() as conn:
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(status=status, finished_at=_now(), claimed_at=None)
            )
            conn.execute(delete(job_uploads).where(job_uploads.c.job_id == job_id))
        return status

    @guarded
    def upload_path(self, job_id: str, file: JobFile) -> Path:
        """The file's bytes written into this process's spool (``<spool>/<job>/<name>``, the
        staged name keeps the type suffix the pipeline reads); reused if already there."""
        target = self._spool / job_id / PurePosixPath(file.path).name
        if target.exists():
            return target
        with self._engine.connect() as conn:
            content = conn.execute(
                select(job_uploads.c.content).where(
                    job_uploads.c.job_id == job_id, job_uploads.c.idx == file.idx
                )
            ).scalar_one_or_none()
        if content is None:
            raise NotFoundError(f"job {job_id}: the upload of file {file.idx} is gone")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(bytes(content))
        partial.replace(target)  # a crash mid-write never leaves a truncated file behind
        return target


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")  # as the SQLite store writes it


def _remove_staged(files: Sequence[NewFile]) -> None:
    folders = set()
    for f in files:
        path = Path(f.path)
        path.unlink(missing_ok=True)
        folders.add(path.parent)
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty or gone: the worker's cleanup takes it
            folder.rmdir()
