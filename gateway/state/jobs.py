"""Ingest jobs and their uploads in the shared PostgreSQL, for several gateways and workers.

Uploads are stored as ``bytea`` rows (``job_uploads``), one per accepted file, never larger than
``ingestion.max_file_mb`` (the upload route refuses bigger files before they get here). Why the
database and not a volume: every gateway and worker already reaches PostgreSQL, while a volume
every pod mounts read-write (RWX) is what most on-premise clusters lack. A worker materialises a
file into its own spool directory just before its batch runs, drops that copy once the file is
recorded, and the bytes leave the database once the job ends.

Workers claim one batch of a job at a time under a lease (``ingestion.leases``): the claim reads
the jobs no live lease holds, orders them fairly (``ingestion.scheduling``) and locks the first
one it can with ``SELECT ... FOR UPDATE SKIP LOCKED``, so two workers never wait on each other and
never take the same job. Lease expiry is on the database's clock, the one every host shares.
Every write of a worker is conditional on its lease: a worker that lost it writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from gateway.state.engine import guarded
from gateway.state.schema import ingest_turns, job_files, job_uploads, jobs
from ingestion.jobs import (
    ALL_GROUPS,
    Job,
    JobFile,
    NewFile,
    final_status,
    job_from_rows,
    new_job_id,
)
from ingestion.leases import Lease, LeaseLostError, lapsed_reason
from ingestion.scheduling import Candidate, exhausted, fair_order, give_up_reason
from services.errors import NotFoundError
from services.redaction_profile import RedactionProfile

_UNFINISHED = ("queued", "running")


class PostgresJobStore:
    def __init__(self, engine: Engine, *, spool: Path) -> None:
        self._engine = engine
        self._spool = spool

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
        """The oldest job not yet ended (``holdfast reindex`` asks): a look, no claim."""
        query = (
            select(jobs.c.job_id)
            .where(jobs.c.status.in_(_UNFINISHED))
            .order_by(jobs.c.created_at, jobs.c.job_id)
            .limit(1)
        )
        with self._engine.connect() as conn:
            found = conn.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    @guarded
    def claim(self, owner: str, *, lease_s: float, max_attempts: int) -> Lease | None:
        with self._engine.begin() as conn:
            rows = conn.execute(
                select(
                    jobs.c.job_id,
                    jobs.c.owner,
                    jobs.c.created_at,
                    _leased().label("leased"),
                ).where(jobs.c.status.in_(_UNFINISHED))
            ).all()
            free = [r for r in rows if not r.leased]
            if not free:
                return None
            running = Counter(str(r.owner) for r in rows if r.leased)
            served = {
                str(o): float(t)
                for o, t in conn.execute(
                    select(ingest_turns.c.owner, func.extract("epoch", ingest_turns.c.served_at))
                ).all()
            }
            candidates = [Candidate(r.job_id, r.owner, r.created_at) for r in free]
            for job_id in fair_order(candidates, running, served):
                lease = self._try_claim(conn, job_id, owner, lease_s, max_attempts)
                if lease is not None:
                    return lease
        return None

    def _try_claim(
        self, conn: Connection, job_id: str, owner: str, lease_s: float, max_attempts: int
    ) -> Lease | None:
        """Lock ``job_id`` unless another worker holds or is claiming it, then lease it (or
        give it up when it is out of attempts, and return None)."""
        row = conn.execute(
            select(jobs.c.owner, jobs.c.attempts, jobs.c.lease_owner, jobs.c.last_error)
            .where(jobs.c.job_id == job_id, jobs.c.status.in_(_UNFINISHED), ~_leased())
            .with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return None
        error = lapsed_reason(row.lease_owner) or row.last_error
        if exhausted(row.attempts, max_attempts):
            self._give_up(conn, job_id, give_up_reason(row.attempts, error))
            return None
        conn.execute(
            update(jobs)
            .where(jobs.c.job_id == job_id)
            .values(
                status="running",
                lease_owner=owner,
                lease_expires_at=func.clock_timestamp() + timedelta(seconds=lease_s),
                attempts=jobs.c.attempts + 1,
                last_error=error,
            )
        )
        turn = pg_insert(ingest_turns).values(owner=row.owner, served_at=func.clock_timestamp())
        conn.execute(
            turn.on_conflict_do_update(
                index_elements=[ingest_turns.c.owner],
                set_={"served_at": turn.excluded.served_at},
            )
        )
        return Lease(job_id, owner, int(row.attempts) + 1)

    def _give_up(self, conn: Connection, job_id: str, reason: str) -> None:
        conn.execute(
            update(job_files)
            .where(job_files.c.job_id == job_id, job_files.c.status == "pending")
            .values(status="failed", reason=reason)
        )
        files = conn.execute(select(job_files.c.status).where(job_files.c.job_id == job_id)).all()
        status = final_status([JobFile(0, "", "", str(f.status)) for f in files])
        conn.execute(
            update(jobs)
            .where(jobs.c.job_id == job_id)
            .values(status=status, finished_at=_now(), lease_owner=None, lease_expires_at=None)
        )
        conn.execute(delete(job_uploads).where(job_uploads.c.job_id == job_id))

    @guarded
    def renew(self, lease: Lease, *, lease_s: float) -> bool:
        with self._engine.begin() as conn:
            renewed = conn.execute(
                update(jobs)
                .where(_held(lease), jobs.c.status.in_(_UNFINISHED))
                .values(lease_expires_at=func.clock_timestamp() + timedelta(seconds=lease_s))
            ).rowcount
        return renewed == 1

    @guarded
    def release(self, lease: Lease, *, error: str = "") -> None:
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
        if error:
            values["last_error"] = error
        with self._engine.begin() as conn:
            released = conn.execute(update(jobs).where(_held(lease)).values(**values)).rowcount
        if released != 1:
            raise LeaseLostError(f"job {lease.job_id} is no longer this worker's")

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
        lease: Lease | None = None,
    ) -> None:
        """Record one file's outcome (progress: the job's attempts start again)."""
        with self._engine.begin() as conn:
            if lease is not None:
                _lock_held(conn, lease)
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
            conn.execute(
                update(jobs).where(jobs.c.job_id == job_id).values(attempts=0, last_error="")
            )

    @guarded
    def finish(self, job_id: str, *, lease: Lease | None = None) -> str:
        with self._engine.begin() as conn:
            if lease is not None:
                _lock_held(conn, lease)
            files = conn.execute(
                select(job_files.c.status).where(job_files.c.job_id == job_id)
            ).all()
            status = final_status([JobFile(0, "", "", str(f.status)) for f in files])
            conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id)
                .values(status=status, finished_at=_now(), lease_owner=None, lease_expires_at=None)
            )
            conn.execute(delete(job_uploads).where(job_uploads.c.job_id == job_id))
        return status

    def drop_local_copies(self, job_id: str, files: Sequence[JobFile]) -> None:
        """Remove this worker's spooled copies: the job's next batch may run elsewhere."""
        for file in files:
            (self._spool / job_id / PurePosixPath(file.path).name).unlink(missing_ok=True)

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
        # unique per writer: a slow worker and its successor may spool the same file at once
        partial = target.with_name(f"{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        partial.write_bytes(bytes(content))
        partial.replace(target)  # a crash mid-write never leaves a truncated file behind
        return target


def _leased() -> ColumnElement[bool]:
    """A live lease: some worker runs a batch of the job now."""
    return func.coalesce(jobs.c.lease_expires_at > func.clock_timestamp(), False)


def _held(lease: Lease) -> ColumnElement[bool]:
    return (jobs.c.job_id == lease.job_id) & (jobs.c.lease_owner == lease.owner)


def _lock_held(conn: Connection, lease: Lease) -> None:
    """Lock the job row if ``lease`` still holds it (a takeover waits for this transaction),
    else raise ``LeaseLostError``."""
    held = conn.execute(select(jobs.c.job_id).where(_held(lease)).with_for_update()).first()
    if held is None:
        raise LeaseLostError(f"job {lease.job_id} is no longer this worker's")


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
