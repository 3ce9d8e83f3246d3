"""Alembic environment: runs on the connection ``gateway.state.migrate`` hands in (online only)."""

from __future__ import annotations

from alembic import context

from gateway.state.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
