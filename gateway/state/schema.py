"""The shared-state tables as SQLAlchemy Core metadata: what the PostgreSQL stores query.

The migrations in ``migrations/versions`` create these; a change here needs a new revision.
Lists and maps are JSON text, as in the SQLite stores, so both backends share their record code.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("groups_json", Text, nullable=False),
    Column("roles_json", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
)

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("groups", Text, nullable=False),
    Column("redact", Integer, nullable=False),
    Column("redaction_profile", Text, nullable=False, server_default=""),
    Column("writer_groups", Text),
    Column("metadata", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("finished_at", Text),
    # the lease of the worker running a batch of it now (migration 0003), and its attempts
    Column("lease_owner", Text),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Index("jobs_status_created", "status", "created_at"),
)

# owner (principal) -> when a batch of theirs was last claimed: the scheduler's round robin
ingest_turns = Table(
    "ingest_turns",
    metadata,
    Column("owner", Text, primary_key=True),
    Column("served_at", DateTime(timezone=True), nullable=False),
)

job_files = Table(
    "job_files",
    metadata,
    Column("job_id", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("source", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("doc_id", Text, nullable=False, server_default=""),
    Column("chunks", Integer, nullable=False, server_default="0"),
    Column("reason", Text, nullable=False, server_default=""),
    Column("redactions", Text, nullable=False, server_default="{}"),
    PrimaryKeyConstraint("job_id", "idx"),
    ForeignKeyConstraint(["job_id"], ["jobs.job_id"], ondelete="CASCADE"),
)

job_uploads = Table(
    "job_uploads",
    metadata,
    Column("job_id", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("content", LargeBinary, nullable=False),
    PrimaryKeyConstraint("job_id", "idx"),
    ForeignKeyConstraint(
        ["job_id", "idx"], ["job_files.job_id", "job_files.idx"], ondelete="CASCADE"
    ),
)

# the reindex write fence (gateway.models.write_fence): at most one fence row, and the leases
write_fence = Table(
    "write_fence",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

write_leases = Table(
    "write_leases",
    metadata,
    Column("token", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
