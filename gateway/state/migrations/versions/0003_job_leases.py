"""Ingest workers: job leases (owner and expiry), attempts, the last error, and the owners'
turns for fair scheduling; the old claim timestamp goes (the lease expiry replaces it).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("lease_owner", sa.Text))
    op.add_column("jobs", sa.Column("lease_expires_at", sa.DateTime(timezone=True)))
    op.add_column("jobs", sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
    op.add_column("jobs", sa.Column("last_error", sa.Text, nullable=False, server_default=""))
    op.drop_column("jobs", "claimed_at")
    op.create_table(
        "ingest_turns",
        sa.Column("owner", sa.Text, primary_key=True),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_turns")
    op.add_column("jobs", sa.Column("claimed_at", sa.DateTime(timezone=True)))
    op.drop_column("jobs", "last_error")
    op.drop_column("jobs", "attempts")
    op.drop_column("jobs", "lease_expires_at")
    op.drop_column("jobs", "lease_owner")
