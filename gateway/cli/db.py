"""``holdfast db upgrade|current``: the schema of the shared PostgreSQL state (Alembic)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from gateway.cli.common import cli_settings, fail, out
from services.errors import HoldfastError

if TYPE_CHECKING:
    from sqlalchemy import Engine

db_app = typer.Typer(
    help="Shared state on PostgreSQL (database.url): apply and show schema migrations. "
    "Without database.url the gateway keeps its state in SQLite and needs none of this.",
    no_args_is_help=True,
)


def _engine() -> Engine:
    from gateway.container import database_engine

    settings = cli_settings()
    try:
        engine = database_engine(settings)
    except (HoldfastError, OSError) as exc:
        fail(f"database.url: {exc}")
    if engine is None:
        fail("database.url is not set (HOLDFAST_DATABASE__URL): state is in embedded SQLite")
    return engine


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to this version's head revision (safe to repeat).

    Run it once per release before starting gateways and workers: they refuse to start on an
    older schema. Migrations run in one transaction, so a failed upgrade changes nothing."""
    from gateway.state.migrate import head, upgrade

    engine = _engine()
    try:
        reached = upgrade(engine)
    except HoldfastError as exc:
        fail(str(exc))
    out.print(f"database schema at {reached} (head {head()})")


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision and whether it is this version's head."""
    from gateway.state.migrate import current, head

    engine = _engine()
    try:
        at = current(engine)
    except HoldfastError as exc:
        fail(str(exc))
    want = head()
    state = "up to date" if at == want else "behind: run `holdfast db upgrade`"
    out.print(f"database schema at {at or 'no revision'}, head {want}: {state}")
