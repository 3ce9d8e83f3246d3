"""Alembic migrations of the shared-state schema (shipped as package data; run by `holdfast db`)."""
