"""The write fence: a reindex's last re-sync and alias switch run while no document write does.

Every write of documents (an ingest batch's store writes and deletes, ``DELETE
/v1/documents/{id}``) holds a *lease* while it writes. ``holdfast reindex`` (and its rollback)
*raises the fence*: from then on no lease is granted; it waits until the leases granted before
are returned, works alone (last re-sync, alias switch), and lowers the fence. A writer that meets
the fence waits, or gives up with ``WriteFencedError`` (503, retryable, with Retry-After).

Fence and leases live in the shared state store, so every process that writes takes part:
``SqliteWriteFence`` is the one-host store under ``HOLDFAST_HOME/state``; ``WriteFence`` is the
handful of atomic operations another store (PostgreSQL, for several hosts) implements. The
waiting, renewing and giving up are written once, here (``writing``, ``fenced``).

A crashed process blocks nobody for ever: the fence and each lease expire ``ttl_s`` after their
last renewal, and their holder renews them every third of that while it lives.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from gateway.settings import Settings
from services.errors import HoldfastError

FENCE_TTL_S = 30.0  # a fence or lease not renewed for this long is gone (its holder died)
POLL_S = 0.1  # how often a waiting writer or fence holder looks again
WRITER_WAIT_S = 10.0  # how long DELETE waits for a fence to fall before it answers 503
INGEST_WAIT_S = 600.0  # how long an ingest batch waits before its files fail as retryable


class WriteFencedError(HoldfastError):
    """Document writes are paused while a reindex switches collections: retry shortly."""

    status, code, title = 503, "writes_fenced", "Writes are paused for a moment"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FenceLostError(HoldfastError):
    """The fence expired under its holder (it could not renew it): nothing may be switched."""

    status, code, title = 409, "write_fence_lost", "The write fence was lost"


class WriteFence(Protocol):
    """The atomic operations of a fence and its leases in a shared store. Expiry is absolute
    time on the store's clock; an expired fence or lease counts as absent."""

    def try_lease(self, holder: str, ttl_s: float) -> str | None:
        """A new lease's token, or None while a fence stands (checked and taken atomically)."""
        ...

    def renew_lease(self, token: str, ttl_s: float) -> bool: ...

    def end_lease(self, token: str) -> None: ...

    def try_fence(self, holder: str, ttl_s: float) -> str | None:
        """The fence's token, or None while another holder's fence stands."""
        ...

    def renew_fence(self, token: str, ttl_s: float) -> bool:
        """False once the fence is not this token's any more (it expired)."""
        ...

    def lower_fence(self, token: str) -> None: ...

    def fence_holder(self) -> str | None:
        """Who holds the standing fence, if one stands."""
        ...

    def leases(self) -> list[str]:
        """The holders of the leases not expired."""
        ...


class _Renewer:
    """Renews a fence or a lease every third of its TTL on a daemon thread until stopped;
    ``lost`` is set once a renewal is refused."""

    def __init__(self, renew: Callable[[], bool], ttl_s: float) -> None:
        self._renew = renew
        self._every = ttl_s / 3
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-fence-renew", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                kept = self._renew()
            except Exception:  # the store is unreachable: try again, the TTL decides
                continue
            if not kept:
                self.lost.set()
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def writing(
    fence: WriteFence, holder: str, *, wait_s: float, ttl_s: float = FENCE_TTL_S
) -> Iterator[None]:
    """Hold a write lease for the block. While a fence stands, wait up to ``wait_s`` for it
    to fall, then raise ``WriteFencedError``."""
    deadline = time.monotonic() + wait_s
    while (token := fence.try_lease(holder, ttl_s)) is None:
        if time.monotonic() >= deadline:
            by = fence.fence_holder() or "a reindex"
            raise WriteFencedError(
                f"document writes are paused while {by} switches the index; retry shortly",
                retry_after_s=max(1.0, ttl_s / 3),
            )
        time.sleep(POLL_S)
    renewer = _Renewer(lambda: fence.renew_lease(token, ttl_s), ttl_s)
    try:
        yield
    finally:
        renewer.stop()
        fence.end_lease(token)


class FenceHold:
    """A raised fence, as its holder sees it."""

    def __init__(self, renewer: _Renewer) -> None:
        self._renewer = renewer

    def check(self) -> None:
        """Raise ``FenceLostError`` if the fence expired under us (before an alias switch)."""
        if self._renewer.lost.is_set():
            raise FenceLostError(
                "the write fence expired while held (the state store was unreachable for "
                "longer than its TTL); nothing was switched, run the command again"
            )


@contextmanager
def fenced(
    fence: WriteFence, holder: str, *, drain_s: float, ttl_s: float = FENCE_TTL_S
) -> Iterator[FenceHold]:
    """Raise the fence for the block: refuse if another holder's stands; otherwise bar new
    leases, wait up to ``drain_s`` for the leases granted before to be returned (else lower
    it again and raise ``WriteFencedError``), run the block, lower the fence."""
    token = fence.try_fence(holder, ttl_s)
    if token is None:
        raise WriteFencedError(
            f"{fence.fence_holder() or 'another process'} holds the write fence; try again "
            "when it is done",
            retry_after_s=ttl_s,
        )
    renewer = _Renewer(lambda: fence.renew_fence(token, ttl_s), ttl_s)
    try:
        deadline = time.monotonic() + drain_s
        while busy := fence.leases():
            if time.monotonic() >= deadline:
                raise WriteFencedError(
                    f"{len(busy)} document write(s) still running after {drain_s:.0f} s "
                    f"({', '.join(sorted(set(busy))[:3])}); try again when ingestion is quiet",
                    retry_after_s=drain_s,
                )
            time.sleep(POLL_S)
        hold = FenceHold(renewer)
        hold.check()
        yield hold
    finally:
        renewer.stop()
        fence.lower_fence(token)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS write_fence (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS write_leases (
    token TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL
);
"""


class SqliteWriteFence:
    """``WriteFence`` in a SQLite file: one host, any number of processes (each check-and-take
    is one ``BEGIN IMMEDIATE`` transaction). The constructor does no I/O."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._ready = False

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front so a check and its write are atomic."""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            if not self._ready:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._ready = True
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _standing(self, conn: sqlite3.Connection) -> tuple[str, str] | None:
        row = conn.execute(
            "SELECT token, holder FROM write_fence WHERE id = 1 AND expires_at > ?",
            (self._clock(),),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def try_lease(self, holder: str, ttl_s: float) -> str | None:
        with self._tx() as conn:
            if self._standing(conn) is not None:
                return None
            token = secrets.token_hex(16)
            conn.execute(
                "INSERT INTO write_leases (token, holder, expires_at) VALUES (?, ?, ?)",
                (token, holder, self._clock() + ttl_s),
            )
        return token

    def renew_lease(self, token: str, ttl_s: float) -> bool:
        with self._tx() as conn:
            done = conn.execute(
                "UPDATE write_leases SET expires_at = ? WHERE token = ?",
                (self._clock() + ttl_s, token),
            )
            return done.rowcount == 1

    def end_lease(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM write_leases WHERE token = ?", (token,))

    def try_fence(self, holder: str, ttl_s: float) -> str | None:
        with self._tx() as conn:
            if self._standing(conn) is not None:
                return None
            token = secrets.token_hex(16)
            conn.execute(
                "INSERT OR REPLACE INTO write_fence (id, token, holder, expires_at) "
                "VALUES (1, ?, ?, ?)",
                (token, holder, self._clock() + ttl_s),
            )
        return token

    def renew_fence(self, token: str, ttl_s: float) -> bool:
        with self._tx() as conn:
            done = conn.execute(
                "UPDATE write_fence SET expires_at = ? WHERE id = 1 AND token = ? "
                "AND expires_at > ?",
                (self._clock() + ttl_s, token, self._clock()),
            )
            return done.rowcount == 1

    def lower_fence(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM write_fence WHERE id = 1 AND token = ?", (token,))

    def fence_holder(self) -> str | None:
        with self._tx() as conn:
            standing = self._standing(conn)
        return None if standing is None else standing[1]

    def leases(self) -> list[str]:
        with self._tx() as conn:
            now = self._clock()
            conn.execute("DELETE FROM write_leases WHERE expires_at <= ?", (now,))
            rows = conn.execute("SELECT holder FROM write_leases").fetchall()
        return [str(r[0]) for r in rows]


def write_fence_for(settings: Settings) -> WriteFence:
    """The fence in the state store every writer of this installation shares: the shared
    PostgreSQL when ``database.url`` is set (every replica and worker), else the SQLite file
    under the state directory (one host)."""
    if settings.database.dsn() is None:
        return SqliteWriteFence(settings.state_dir / "write-fence.db")
    from gateway.state.engine import engine_for
    from gateway.state.write_fence import PostgresWriteFence

    engine = engine_for(settings)
    assert engine is not None
    return PostgresWriteFence(engine)
