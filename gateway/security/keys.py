"""API keys: stored as SHA-256 hashes; the key itself is shown once, at creation.

``KeyStore`` keeps them in SQLite (one host); ``gateway.state.keys.PostgresKeyStore`` in the
shared PostgreSQL (several gateways). Both are ``ApiKeys``; the composition root picks one.

Keys are 256-bit random tokens, so a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from services.errors import InvalidRequestError, NotFoundError, StateUnavailableError

KEY_PREFIX = "hf_"
ROLES = frozenset({"query", "ingest", "admin"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    roles_json  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
)
"""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a name, the access groups they may read, the roles they hold."""

    name: str
    groups: tuple[str, ...]
    roles: frozenset[str]
    key_id: str = ""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    name: str
    groups: tuple[str, ...]
    roles: tuple[str, ...]
    created_at: str
    revoked_at: str | None


class ApiKeys(Protocol):
    """What the authenticator, the admin API and ``holdfast keys`` need of a key store."""

    def create(
        self, name: str, *, groups: Sequence[str], roles: Sequence[str]
    ) -> tuple[str, str]: ...

    def import_key(
        self, key: str, name: str, *, groups: Sequence[str], roles: Sequence[str]
    ) -> str: ...

    def authenticate(self, key: str) -> Principal | None: ...

    def list(self) -> list[KeyRecord]: ...

    def has_active_role(self, role: str) -> bool: ...

    def revoke(self, key_id_or_name: str) -> int: ...


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``."""
    return secrets.token_hex(6), KEY_PREFIX + secrets.token_urlsafe(32)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def hash_key(key: str) -> str:
    return _hash(key)


def clean_groups(groups: Sequence[str]) -> list[str]:
    return _clean(groups, "group")


def clean_roles(roles: Sequence[str]) -> list[str]:
    return _clean_roles(roles)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _clean(values: Sequence[str], what: str) -> list[str]:
    cleaned = sorted({v.strip() for v in values if v.strip()})
    if not cleaned:
        raise InvalidRequestError(f"at least one {what} is required")
    return cleaned


def _clean_roles(roles: Sequence[str]) -> list[str]:
    cleaned = _clean(roles, "role")
    unknown = set(cleaned) - ROLES
    if unknown:
        raise InvalidRequestError(
            f"unknown role(s) {', '.join(sorted(unknown))}; choose from {', '.join(sorted(ROLES))}"
        )
    return cleaned


def _reason(exc: sqlite3.Error | OSError) -> str:
    """SQLite's first line ("database is locked") or the OS's reason, never a file path."""
    text = exc.strerror if isinstance(exc, OSError) else str(exc).strip()
    return (text or type(exc).__name__).splitlines()[0]


class KeyStore:
    def __init__(self, db_path: Path) -> None:
        self._db_path = db_path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One transaction. A locked, unreadable or broken file is ``StateUnavailableError``:
        a 503 problem for the request and one line in the CLI, not a 500 and a traceback."""
        try:
            self._db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._db_path, timeout=10)
            try:
                conn.execute(_SCHEMA)
                with conn:
                    yield conn
            finally:
                conn.close()
        except (sqlite3.Error, OSError) as exc:
            raise StateUnavailableError(f"key database: {_reason(exc)}") from exc

    def create(self, name: str, *, groups: Sequence[str], roles: Sequence[str]) -> tuple[str, str]:
        """Create a key; returns ``(key_id, key)``. Only its hash is kept, never the key."""
        if not name.strip():
            raise InvalidRequestError("a key needs a name")
        clean_groups = _clean(groups, "group")
        clean_roles = _clean_roles(roles)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(6)
        with self._db() as db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    key_id,
                    _hash(key),
                    name.strip(),
                    json.dumps(clean_groups),
                    json.dumps(clean_roles),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
        return key_id, key

    def import_key(
        self, key: str, name: str, *, groups: Sequence[str], roles: Sequence[str]
    ) -> str:
        """Register a key minted elsewhere (e.g. an admin key from a Kubernetes Secret)."""
        with self._db() as db:
            row = db.execute("SELECT key_id FROM api_keys WHERE key_hash = ?", (_hash(key),))
            existing = row.fetchone()
            if existing:
                return str(existing[0])
            key_id = secrets.token_hex(6)
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    key_id,
                    _hash(key),
                    name,
                    json.dumps(_clean(groups, "group")),
                    json.dumps(_clean_roles(roles)),
                    datetime.now(UTC).isoformat(timespec="seconds"),
                ),
            )
        return key_id

    def authenticate(self, key: str) -> Principal | None:
        with self._db() as db:
            row = db.execute(
                "SELECT key_id, name, groups_json, roles_json FROM api_keys "
                "WHERE key_hash = ? AND revoked_at IS NULL",
                (_hash(key),),
            ).fetchone()
        if row is None:
            return None
        return Principal(
            name=row[1],
            groups=tuple(json.loads(row[2])),
            roles=frozenset(json.loads(row[3])),
            key_id=row[0],
        )

    def list(self) -> list[KeyRecord]:
        with self._db() as db:
            rows = db.execute(
                "SELECT key_id, name, groups_json, roles_json, created_at, revoked_at "
                "FROM api_keys ORDER BY created_at, name"
            ).fetchall()
        return [
            KeyRecord(r[0], r[1], tuple(json.loads(r[2])), tuple(json.loads(r[3])), r[4], r[5])
            for r in rows
        ]

    def has_active_role(self, role: str) -> bool:
        return any(role in k.roles and k.revoked_at is None for k in self.list())

    def revoke(self, key_id_or_name: str) -> int:
        """Revoke by key id, or every active key of that name. Returns how many were revoked."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._db() as db:
            cursor = db.execute(
                "UPDATE api_keys SET revoked_at = ? "
                "WHERE revoked_at IS NULL AND (key_id = ? OR name = ?)",
                (now, key_id_or_name, key_id_or_name),
            )
            revoked = cursor.rowcount
        if revoked == 0:
            raise NotFoundError(f"no active key with id or name {key_id_or_name!r}")
        return revoked
