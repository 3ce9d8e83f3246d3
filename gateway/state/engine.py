"""One pooled SQLAlchemy engine per process for the shared PostgreSQL state.

The URL may be a SQLAlchemy URL (``postgresql+psycopg://...``) or a libpq DSN
(``host=... dbname=...``): both become a libpq conninfo that psycopg opens, so an operator can
paste what ``psql`` accepts. Every connection carries a connect timeout and a server-side
statement timeout, and the pool a checkout timeout: no call waits on the database for ever.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError

from services.errors import ConfigError, StateUnavailableError

if TYPE_CHECKING:
    from gateway.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
_DRIVER = re.compile(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    connect_timeout_s: float = 5.0
    statement_timeout_s: float = 30.0
    pool_size: int = 5
    max_overflow: int = 5
    pool_timeout_s: float = 10.0


def conninfo(url: str) -> str:
    """The libpq conninfo for a SQLAlchemy URL or DSN (drops a ``+driver`` suffix)."""
    text = url.strip()
    if not text:
        raise ConfigError("database.url is empty")
    if "://" in text:
        text = _DRIVER.sub(r"\1://", text)
        scheme = text.split("://", 1)[0].lower()
        if scheme not in {"postgres", "postgresql"}:
            raise ConfigError(f"database.url: only PostgreSQL is supported, not {scheme!r}")
    elif "=" not in text:
        raise ConfigError("database.url is neither a postgresql:// URL nor a key=value DSN")
    return text


def connect_args(policy: PoolPolicy) -> dict[str, Any]:
    """psycopg keyword arguments: libpq's connect timeout (whole seconds) and the statement
    timeout set at session start, so it holds for every statement of that connection."""
    return {
        "connect_timeout": max(1, round(policy.connect_timeout_s)),
        "options": f"-c statement_timeout={max(1, round(policy.statement_timeout_s * 1000))}",
    }


def build_engine(url: str, policy: PoolPolicy | None = None) -> Engine:
    """A pooled engine (no I/O until first use); ``pool_pre_ping`` drops dead connections."""
    policy = policy or PoolPolicy()
    info = conninfo(url)
    args = connect_args(policy)

    def connect() -> Any:
        import psycopg

        return psycopg.connect(info, **args)

    return create_engine(
        "postgresql+psycopg://",
        creator=connect,
        pool_size=policy.pool_size,
        max_overflow=policy.max_overflow,
        pool_timeout=policy.pool_timeout_s,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


@functools.lru_cache(maxsize=4)
def shared_engine(url: str, policy: PoolPolicy) -> Engine:
    """The process's one engine for ``url``: the key store, the job store and the CLI share
    its pool instead of each opening their own."""
    return build_engine(url, policy)


def engine_for(settings: Settings) -> Engine | None:
    """The shared engine when ``database.url`` (or ``url_file``) is set, else None (SQLite)."""
    url = settings.database.dsn()
    if url is None:
        return None
    db = settings.database
    return shared_engine(
        url,
        PoolPolicy(
            connect_timeout_s=db.connect_timeout_s,
            statement_timeout_s=db.statement_timeout_s,
            pool_size=db.pool_size,
            max_overflow=db.max_overflow,
            pool_timeout_s=db.pool_timeout_s,
        ),
    )


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """A store method whose database errors surface as ``StateUnavailableError`` (503 at the
    edge, one line in the CLI) naming the driver's first line, never a URL or a traceback."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            lines = str(orig if orig is not None else exc).strip().splitlines()
            reason = lines[0] if lines else type(exc).__name__
            raise StateUnavailableError(f"shared state database: {reason}") from exc

    return call
