"""The write fence (``gateway.models.write_fence.WriteFence``) in the shared PostgreSQL, so a
reindex on one host holds back the document writes of every gateway and worker.

Each check-and-take runs in one transaction behind a transaction-scoped advisory lock: a lease
and the fence are never granted past each other (under READ COMMITTED, two transactions could
otherwise each miss the other's uncommitted row). Expiry is on the database's clock, the one
clock every host shares.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from gateway.state.engine import guarded
from gateway.state.schema import write_fence, write_leases

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('holdfast.write_fence'))")


class PostgresWriteFence:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self._engine.begin() as conn:
            conn.execute(_LOCK)
            yield conn

    @staticmethod
    def _standing(conn: Connection) -> tuple[str, str] | None:
        row = conn.execute(
            select(write_fence.c.token, write_fence.c.holder).where(
                write_fence.c.id == 1, write_fence.c.expires_at > func.clock_timestamp()
            )
        ).first()
        return None if row is None else (str(row[0]), str(row[1]))

    @guarded
    def try_lease(self, holder: str, ttl_s: float) -> str | None:
        with self._tx() as conn:
            if self._standing(conn) is not None:
                return None
            token = secrets.token_hex(16)
            conn.execute(
                insert(write_leases).values(token=token, holder=holder, expires_at=_in(ttl_s))
            )
        return token

    @guarded
    def renew_lease(self, token: str, ttl_s: float) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(write_leases)
                .where(write_leases.c.token == token)
                .values(expires_at=_in(ttl_s))
            )
            return done.rowcount == 1

    @guarded
    def end_lease(self, token: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(write_leases).where(write_leases.c.token == token))

    @guarded
    def try_fence(self, holder: str, ttl_s: float) -> str | None:
        with self._tx() as conn:
            if self._standing(conn) is not None:
                return None
            token = secrets.token_hex(16)
            conn.execute(delete(write_fence).where(write_fence.c.id == 1))  # an expired one
            conn.execute(
                insert(write_fence).values(id=1, token=token, holder=holder, expires_at=_in(ttl_s))
            )
        return token

    @guarded
    def renew_fence(self, token: str, ttl_s: float) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(write_fence)
                .where(
                    and_(
                        write_fence.c.id == 1,
                        write_fence.c.token == token,
                        write_fence.c.expires_at > func.clock_timestamp(),
                    )
                )
                .values(expires_at=_in(ttl_s))
            )
            return done.rowcount == 1

    @guarded
    def lower_fence(self, token: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(write_fence).where(write_fence.c.id == 1, write_fence.c.token == token)
            )

    @guarded
    def fence_holder(self) -> str | None:
        with self._engine.connect() as conn:
            standing = self._standing(conn)
        return None if standing is None else standing[1]

    @guarded
    def leases(self) -> list[str]:
        with self._tx() as conn:
            conn.execute(
                delete(write_leases).where(write_leases.c.expires_at <= func.clock_timestamp())
            )
            rows = conn.execute(select(write_leases.c.holder)).all()
        return [str(r[0]) for r in rows]


def _in(ttl_s: float) -> ColumnElement[datetime]:
    """``ttl_s`` from now on the database's clock."""
    return func.clock_timestamp() + timedelta(seconds=ttl_s)
