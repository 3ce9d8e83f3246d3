"""Ingest jobs persisted in SQLite, so a gateway killed mid-job resumes after a restart.

``JobStore`` is the one-host SQLite store; ``JobQueue`` is what the worker and the routes need of
any store (the gateway's shared-state package has a PostgreSQL one for several replicas).

A job is its parameters plus one row per file. A file row leaves ``pending`` only after its
chunks are written; on restart, the worker takes the job up again at its pending files. A file
that was written but not yet marked is simply seen again as ``unchanged`` (its file hash), so a
resumed job neither duplicates nor loses chunks.

Workers claim a job one batch at a time under a lease (``ingestion.leases``), in the order of
``ingestion.scheduling``. Here each claim is one ``BEGIN IMMEDIATE`` transaction, so the gateway's
worker thread and ``holdfast worker`` processes on the same host share one file safely; a lease
held by a process of this host that no longer exists is taken at once.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ingestion.leases import Lease, LeaseLostError, lapsed_reason, local_owner_gone
from ingestion.scheduling import Candidate, exhausted, fair_order, give_up_reason
from services.errors import NotFoundError
from services.redaction_profile import RedactionProfile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    status TEXT NOT NULL,
    groups TEXT NOT NULL,
    redact INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS job_files (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    status TEXT NOT NULL,
    doc_id TEXT NOT NULL DEFAULT '',
    chunks INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    redactions TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS owner_turns (
    owner TEXT PRIMARY KEY,
    served_at REAL NOT NULL
);
"""
# Columns added after the first release, applied to an existing file at open.
_MIGRATIONS = (
    ("jobs", "redaction_profile", "TEXT NOT NULL DEFAULT ''"),
    ("jobs", "writer_groups", "TEXT"),  # JSON list; '"*"' = every group (admin); NULL = legacy
    ("jobs", "lease_owner", "TEXT"),  # the worker running a batch of it now
    ("jobs", "lease_expires", "REAL"),  # epoch seconds (one host: one clock)
    ("jobs", "attempts", "INTEGER NOT NULL DEFAULT 0"),  # claims since its last progress
    ("jobs", "last_error", "TEXT NOT NULL DEFAULT ''"),
)
ALL_GROUPS = "*"
OK_FILE = {"indexed", "unchanged", "duplicate"}
FINAL_JOB = {"succeeded", "partial", "failed"}


@dataclass(frozen=True, slots=True)
class JobFile:
    idx: int
    source: str
    path: str
    status: str  # pending | indexed | unchanged | duplicate | rejected | failed
    doc_id: str = ""
    chunks: int = 0
    reason: str = ""
    redactions: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    owner: str
    status: str  # queued | running | succeeded | partial | failed
    groups: tuple[str, ...]
    redaction: RedactionProfile
    metadata: dict[str, Any]
    created_at: str
    finished_at: str | None
    files: tuple[JobFile, ...]
    # the groups the uploader may write (None: every group, an admin's upload); a document of
    # the same name in other groups is replaced only when all its groups are in here
    writer_groups: tuple[str, ...] | None = ()

    @property
    def redact(self) -> bool:
        return self.redaction is not RedactionProfile.NONE

    @property
    def files_done(self) -> int:
        return sum(1 for f in self.files if f.status != "pending")

    @property
    def chunks_written(self) -> int:
        return sum(f.chunks for f in self.files)


@dataclass(frozen=True, slots=True)
class NewFile:
    source: str
    path: str
    rejected_reason: str = ""  # set when the upload itself was refused (e.g. over the limit)


class JobQueue(Protocol):
    """The job store as the worker and the jobs/documents routes use it."""

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
    ) -> str: ...

    def get(self, job_id: str) -> Job: ...

    def counts_by_status(self) -> dict[str, int]:
        """How many jobs are in each status (the queue-depth metric)."""
        ...

    def next_runnable(self) -> str | None:
        """The oldest job not yet ended (queued or running), or None: a look, no claim."""
        ...

    def claim(self, owner: str, *, lease_s: float, max_attempts: int) -> Lease | None:
        """Lease the fairest job that no live worker holds, for ``lease_s``, counting one
        attempt; a job out of attempts is given up on the way (its pending files fail)."""
        ...

    def renew(self, lease: Lease, *, lease_s: float) -> bool:
        """Extend the lease; False when it is no longer ``lease.owner``'s."""
        ...

    def release(self, lease: Lease, *, error: str = "") -> None:
        """Put the job back in the queue (``error``: why its batch did not finish)."""
        ...

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
        """Record a file's outcome; with ``lease``, only while it is held (else
        ``LeaseLostError``), and it resets the job's attempts (progress)."""
        ...

    def finish(self, job_id: str, *, lease: Lease | None = None) -> str: ...

    def upload_path(self, job_id: str, file: JobFile) -> Path:
        """A local file holding ``file``'s uploaded bytes, for the pipeline to read."""
        ...

    def drop_local_copies(self, job_id: str, files: Sequence[JobFile]) -> None:
        """Forget this process's local copies of recorded files (a spool, not the upload)."""
        ...


def final_status(files: Sequence[JobFile]) -> str:
    """succeeded when every file is fine, partial when some are, failed when none is."""
    ok = sum(1 for f in files if f.status in OK_FILE)
    return "succeeded" if ok == len(files) else ("partial" if ok else "failed")


def job_from_rows(row: Mapping[str, Any], files: Iterable[Mapping[str, Any]]) -> Job:
    """A ``Job`` from a jobs row and its job_files rows (same columns in every backend)."""
    return Job(
        job_id=row["job_id"],
        owner=row["owner"],
        status=row["status"],
        groups=tuple(json.loads(row["groups"])),
        redaction=_profile(row),
        metadata=json.loads(row["metadata"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        writer_groups=_writer_groups(row),
        files=tuple(
            JobFile(
                idx=f["idx"],
                source=f["source"],
                path=f["path"],
                status=f["status"],
                doc_id=f["doc_id"],
                chunks=f["chunks"],
                reason=f["reason"],
                redactions=json.loads(f["redactions"]),
            )
            for f in files
        ),
    )


def new_job_id() -> str:
    return "job_" + secrets.token_hex(8)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._ready = False

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                _migrate(conn)
                self._ready = True
            yield conn
        finally:
            conn.close()

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
        """Queue a job with all its files in one transaction (the worker never sees it half)."""
        job_id = job_id or new_job_id()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "INSERT INTO jobs (job_id, owner, status, groups, redact, redaction_profile, "
                "writer_groups, metadata, created_at, finished_at) "
                "VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, NULL)",
                (
                    job_id,
                    owner,
                    json.dumps(list(groups)),
                    int(redaction is not RedactionProfile.NONE),
                    redaction.value,
                    json.dumps(ALL_GROUPS if writer_groups is None else list(writer_groups)),
                    json.dumps(metadata),
                    _now(),
                ),
            )
            db.executemany(
                "INSERT INTO job_files (job_id, idx, source, path, status, reason) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id,
                        i,
                        f.source,
                        f.path,
                        "rejected" if f.rejected_reason else "pending",
                        f.rejected_reason,
                    )
                    for i, f in enumerate(files)
                ],
            )
            db.execute("COMMIT")
        return job_id

    def get(self, job_id: str) -> Job:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is None:
                raise NotFoundError("no such job")
            files = db.execute(
                "SELECT * FROM job_files WHERE job_id = ? ORDER BY idx", (job_id,)
            ).fetchall()
        return job_from_rows(row, files)

    def counts_by_status(self) -> dict[str, int]:
        with self._db() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        return {str(status): int(n) for status, n in rows}

    def next_runnable(self) -> str | None:
        """The oldest job not yet ended (``holdfast reindex`` asks): a look, no claim."""
        with self._db() as db:
            row = db.execute(
                "SELECT job_id FROM jobs WHERE status IN ('running', 'queued') "
                "ORDER BY created_at, job_id LIMIT 1"
            ).fetchone()
        return None if row is None else str(row["job_id"])

    def claim(self, owner: str, *, lease_s: float, max_attempts: int) -> Lease | None:
        with self._db() as db:
            if self._idle(db):  # an idle poll takes no write lock
                return None
            db.execute("BEGIN IMMEDIATE")  # one claimer at a time across processes
            try:
                lease = self._claim(db, owner, lease_s, max_attempts)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        return lease

    @staticmethod
    def _idle(db: sqlite3.Connection) -> bool:
        found = db.execute(
            "SELECT 1 FROM jobs WHERE status IN ('queued', 'running') LIMIT 1"
        ).fetchone()
        return found is None

    def _claim(
        self, db: sqlite3.Connection, owner: str, lease_s: float, max_attempts: int
    ) -> Lease | None:
        now = time.time()
        rows = db.execute(
            "SELECT job_id, owner, created_at, attempts, lease_owner, lease_expires, last_error "
            "FROM jobs WHERE status IN ('queued', 'running')"
        ).fetchall()
        free = {
            r["job_id"]: r
            for r in rows
            if r["lease_owner"] is None
            or (r["lease_expires"] or 0.0) < now
            or local_owner_gone(r["lease_owner"])
        }
        running = Counter(r["owner"] for r in rows if r["job_id"] not in free)
        served = {
            str(r["owner"]): float(r["served_at"])
            for r in db.execute("SELECT owner, served_at FROM owner_turns")
        }
        candidates = [Candidate(r["job_id"], r["owner"], r["created_at"]) for r in free.values()]
        for job_id in fair_order(candidates, running, served):
            row = free[job_id]
            error = lapsed_reason(row["lease_owner"]) or row["last_error"]
            if exhausted(row["attempts"], max_attempts):
                self._give_up(db, job_id, give_up_reason(row["attempts"], error))
                continue
            db.execute(
                "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires = ?, "
                "attempts = attempts + 1, last_error = ? WHERE job_id = ?",
                (owner, now + lease_s, error, job_id),
            )
            db.execute(
                "INSERT INTO owner_turns (owner, served_at) VALUES (?, ?) "
                "ON CONFLICT (owner) DO UPDATE SET served_at = excluded.served_at",
                (row["owner"], now),
            )
            return Lease(job_id, owner, int(row["attempts"]) + 1)
        return None

    def _give_up(self, db: sqlite3.Connection, job_id: str, reason: str) -> None:
        pending = db.execute(
            "SELECT path FROM job_files WHERE job_id = ? AND status = 'pending'", (job_id,)
        ).fetchall()
        db.execute(
            "UPDATE job_files SET status = 'failed', reason = ? "
            "WHERE job_id = ? AND status = 'pending'",
            (reason, job_id),
        )
        files = db.execute("SELECT * FROM job_files WHERE job_id = ?", (job_id,)).fetchall()
        status = final_status(
            [JobFile(f["idx"], f["source"], f["path"], f["status"]) for f in files]
        )
        db.execute(
            "UPDATE jobs SET status = ?, finished_at = ?, lease_owner = NULL, "
            "lease_expires = NULL WHERE job_id = ?",
            (status, _now(), job_id),
        )
        for row in pending:  # the staged uploads nobody will read now
            if row["path"]:
                Path(row["path"]).unlink(missing_ok=True)

    def renew(self, lease: Lease, *, lease_s: float) -> bool:
        with self._db() as db:
            renewed = db.execute(
                "UPDATE jobs SET lease_expires = ? WHERE job_id = ? AND lease_owner = ? "
                "AND status IN ('queued', 'running')",
                (time.time() + lease_s, lease.job_id, lease.owner),
            ).rowcount
        return renewed == 1

    def release(self, lease: Lease, *, error: str = "") -> None:
        with self._db() as db:
            released = db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL, "
                "last_error = CASE WHEN ? = '' THEN last_error ELSE ? END "
                "WHERE job_id = ? AND lease_owner = ?",
                (error, error, lease.job_id, lease.owner),
            ).rowcount
        if released != 1:
            raise LeaseLostError(f"job {lease.job_id} is no longer this worker's")

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
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            if lease is not None and not _holds(db, lease):
                db.execute("ROLLBACK")
                raise LeaseLostError(f"job {job_id} is no longer this worker's")
            db.execute(
                "UPDATE job_files SET status = ?, doc_id = ?, chunks = ?, reason = ?, "
                "redactions = ? WHERE job_id = ? AND idx = ?",
                (status, doc_id, chunks, reason, json.dumps(redactions or {}), job_id, idx),
            )
            db.execute("UPDATE jobs SET attempts = 0, last_error = '' WHERE job_id = ?", (job_id,))
            db.execute("COMMIT")

    def finish(self, job_id: str, *, lease: Lease | None = None) -> str:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            if lease is not None and not _holds(db, lease):
                db.execute("ROLLBACK")
                raise LeaseLostError(f"job {job_id} is no longer this worker's")
            files = db.execute(
                "SELECT * FROM job_files WHERE job_id = ? ORDER BY idx", (job_id,)
            ).fetchall()
            status = final_status(
                [JobFile(f["idx"], f["source"], f["path"], f["status"]) for f in files]
            )
            db.execute(
                "UPDATE jobs SET status = ?, finished_at = ?, lease_owner = NULL, "
                "lease_expires = NULL WHERE job_id = ?",
                (status, _now(), job_id),
            )
            db.execute("COMMIT")
        return status

    def drop_local_copies(self, job_id: str, files: Sequence[JobFile]) -> None:
        """Nothing: on one host the staged upload is the copy, removed when the job ends."""

    def upload_path(self, job_id: str, file: JobFile) -> Path:
        """One host: the staged upload itself."""
        return Path(file.path)


def _holds(db: sqlite3.Connection, lease: Lease) -> bool:
    row = db.execute(
        "SELECT 1 FROM jobs WHERE job_id = ? AND lease_owner = ?", (lease.job_id, lease.owner)
    ).fetchone()
    return row is not None


def _migrate(conn: sqlite3.Connection) -> None:
    for table, column, declaration in _MIGRATIONS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            except sqlite3.OperationalError as exc:  # another process added it first
                if "duplicate column" not in str(exc):
                    raise


def _profile(row: Mapping[str, Any]) -> RedactionProfile:
    """A job from before profiles carries only its redact flag: on meant the strict default."""
    if row["redaction_profile"]:
        return RedactionProfile(row["redaction_profile"])
    return RedactionProfile.STRICT if row["redact"] else RedactionProfile.NONE


def _writer_groups(row: Mapping[str, Any]) -> tuple[str, ...] | None:
    """A job from before writer scopes replaces nothing outside its own groups."""
    if row["writer_groups"] is None:
        return tuple(json.loads(row["groups"]))
    value = json.loads(row["writer_groups"])
    return None if value == ALL_GROUPS else tuple(value)
