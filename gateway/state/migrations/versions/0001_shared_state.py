"""Shared state: API keys, ingest jobs, their files and upload bytes, and the audit log.

The audit log table may already exist (``audit.backend: postgres`` created it before Alembic):
it is created only if missing, with the same append-only triggers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_AUDIT = """
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL, kind TEXT NOT NULL, principal TEXT NOT NULL, endpoint TEXT NOT NULL,
    decision TEXT NOT NULL, action TEXT NOT NULL, status INTEGER NOT NULL,
    request_id TEXT NOT NULL, groups_json TEXT NOT NULL, doc_ids_json TEXT NOT NULL,
    chunk_ids_json TEXT NOT NULL, alias TEXT NOT NULL, model TEXT NOT NULL,
    redactions_json TEXT NOT NULL, reason TEXT NOT NULL, detail_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at);
CREATE INDEX IF NOT EXISTS audit_log_principal ON audit_log (principal);
CREATE OR REPLACE FUNCTION holdfast_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
FOR EACH ROW EXECUTE FUNCTION holdfast_audit_append_only();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
FOR EACH STATEMENT EXECUTE FUNCTION holdfast_audit_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("groups_json", sa.Text, nullable=False),
        sa.Column("roles_json", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Text),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("redact", sa.Integer, nullable=False),
        sa.Column("redaction_profile", sa.Text, nullable=False, server_default=""),
        sa.Column("writer_groups", sa.Text),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("finished_at", sa.Text),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("jobs_status_created", "jobs", ["status", "created_at"])
    op.create_table(
        "job_files",
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("doc_id", sa.Text, nullable=False, server_default=""),
        sa.Column("chunks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("redactions", sa.Text, nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("job_id", "idx"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], ondelete="CASCADE"),
    )
    op.create_table(
        "job_uploads",
        sa.Column("job_id", sa.Text, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("job_id", "idx"),
        sa.ForeignKeyConstraint(
            ["job_id", "idx"], ["job_files.job_id", "job_files.idx"], ondelete="CASCADE"
        ),
    )
    op.execute(_AUDIT)


def downgrade() -> None:
    # the audit log is kept: it is append-only evidence, never dropped by a schema step
    for table in ("job_uploads", "job_files", "jobs", "api_keys"):
        op.drop_table(table)
