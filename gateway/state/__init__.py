"""Shared state on PostgreSQL: the engine, the stores and the Alembic migrations.

Only the composition root (``gateway.container``, ``gateway.ingest_jobs``) and ``holdfast db``
import this package; everything else sees the stores through their Protocols.
"""
