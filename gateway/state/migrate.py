"""Apply and check the shared-state schema with Alembic.

``holdfast db upgrade`` calls :func:`upgrade`; the gateway calls :func:`require_head` at start
and refuses to serve on a schema older (or newer) than the code it runs.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from services.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDateError(ConfigError):
    code, title = "schema_out_of_date", "The shared-state database schema is not current"


class DatabaseUnreachableError(ConfigError):
    code, title = "database_unreachable", "The shared-state database cannot be reached"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The revision this code expects."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None, "the package ships at least one migration"
    return found


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never upgraded)."""
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise DatabaseUnreachableError(f"database: {_reason(exc)}") from exc


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``, in one transaction; returns the revision reached.
    An advisory lock serialises concurrent upgrades (two migration jobs): the second finds the
    schema current and does nothing."""
    config = _config()
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('holdfast.migrations'))"))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise DatabaseUnreachableError(f"database upgrade failed: {_reason(exc)}") from exc
    return current(engine)


def require_head(engine: Engine) -> None:
    """Refuse to run on a database whose schema is not this code's head revision."""
    at, want = current(engine), head()
    known = {s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()}
    if at is not None and at not in known:
        raise SchemaOutOfDateError(
            f"database schema is at {at}, newer than this gateway knows ({want}): "
            "run the release that upgraded it"
        )
    if at != want:
        raise SchemaOutOfDateError(
            f"database schema is at {at or 'no revision'}, this gateway needs {want}: "
            "run `holdfast db upgrade`"
        )


def _reason(exc: SQLAlchemyError) -> str:
    """The first line of the driver's message, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
