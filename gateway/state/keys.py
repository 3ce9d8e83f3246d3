"""API keys in the shared PostgreSQL: a key created through one gateway authenticates on all.

Same rules and records as the SQLite ``KeyStore`` (only the SHA-256 of a key is kept).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from gateway.security.keys import (
    KeyRecord,
    Principal,
    clean_groups,
    clean_roles,
    hash_key,
    new_key,
    now_iso,
)
from gateway.state.engine import guarded
from gateway.state.schema import api_keys
from services.errors import InvalidRequestError, NotFoundError


class PostgresKeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @guarded
    def create(self, name: str, *, groups: Sequence[str], roles: Sequence[str]) -> tuple[str, str]:
        """Create a key; returns ``(key_id, key)``. Only its hash is kept, never the key."""
        if not name.strip():
            raise InvalidRequestError("a key needs a name")
        row = _row(name.strip(), clean_groups(groups), clean_roles(roles))
        key_id, key = new_key()
        with self._engine.begin() as conn:
            conn.execute(insert(api_keys).values(key_id=key_id, key_hash=hash_key(key), **row))
        return key_id, key

    @guarded
    def import_key(
        self, key: str, name: str, *, groups: Sequence[str], roles: Sequence[str]
    ) -> str:
        """Register a key minted elsewhere; idempotent even when replicas race at first start."""
        row = _row(name, clean_groups(groups), clean_roles(roles))
        key_id, _ = new_key()
        digest = hash_key(key)
        with self._engine.begin() as conn:
            conn.execute(
                pg_insert(api_keys)
                .values(key_id=key_id, key_hash=digest, **row)
                .on_conflict_do_nothing(index_elements=["key_hash"])
            )
            found = conn.execute(
                select(api_keys.c.key_id).where(api_keys.c.key_hash == digest)
            ).scalar_one()
        return str(found)

    @guarded
    def authenticate(self, key: str) -> Principal | None:
        query = select(
            api_keys.c.key_id, api_keys.c.name, api_keys.c.groups_json, api_keys.c.roles_json
        ).where(api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None))
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return Principal(
            name=row.name,
            groups=tuple(json.loads(row.groups_json)),
            roles=frozenset(json.loads(row.roles_json)),
            key_id=row.key_id,
        )

    @guarded
    def list(self) -> list[KeyRecord]:
        query = select(
            api_keys.c.key_id,
            api_keys.c.name,
            api_keys.c.groups_json,
            api_keys.c.roles_json,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        ).order_by(api_keys.c.created_at, api_keys.c.name)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            KeyRecord(r[0], r[1], tuple(json.loads(r[2])), tuple(json.loads(r[3])), r[4], r[5])
            for r in rows
        ]

    @guarded
    def has_active_role(self, role: str) -> bool:
        return any(role in k.roles and k.revoked_at is None for k in self.list())

    @guarded
    def revoke(self, key_id_or_name: str) -> int:
        """Revoke by key id, or every active key of that name. Returns how many were revoked."""
        statement = (
            update(api_keys)
            .where(
                api_keys.c.revoked_at.is_(None),
                (api_keys.c.key_id == key_id_or_name) | (api_keys.c.name == key_id_or_name),
            )
            .values(revoked_at=now_iso())
        )
        with self._engine.begin() as conn:
            revoked = conn.execute(statement).rowcount
        if revoked == 0:
            raise NotFoundError(f"no active key with id or name {key_id_or_name!r}")
        return int(revoked)


def _row(name: str, groups: list[str], roles: list[str]) -> dict[str, str]:
    return {
        "name": name,
        "groups_json": json.dumps(groups),
        "roles_json": json.dumps(roles),
        "created_at": now_iso(),
    }
