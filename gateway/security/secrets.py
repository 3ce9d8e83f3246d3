"""Secrets Holdfast generates for itself, kept as 0600 files under ``$HOLDFAST_HOME/secrets``."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.settings import Settings


def write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)


def read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = secrets.token_urlsafe(32)
    write_secret(path, value)
    return value


def weaviate_api_key(settings: Settings) -> str:
    """The configured Weaviate key, else the one generated for the local stack on first use."""
    if settings.weaviate.api_key is not None:
        return settings.weaviate.api_key.get_secret_value()
    return read_or_create_secret(settings.weaviate_key_file)


def id_key(settings: Settings) -> bytes:
    """The key of stored ids: configured, else generated once for this home and kept."""
    configured = settings.ingestion.id_key
    if configured is not None:
        return configured.get_secret_value().encode()
    return read_or_create_secret(settings.id_key_file).encode()
