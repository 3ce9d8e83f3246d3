"""``holdfast``: run the local stack, manage keys, ingest, ask. The CLI is a composition root.

This module only assembles the app; each command group lives in a module of its own.
"""

from __future__ import annotations

import sys

import typer

from gateway.cli.audit import audit_command
from gateway.cli.bundle import bundle_app
from gateway.cli.config import config_app
from gateway.cli.db import db_app
from gateway.cli.eval import eval_command
from gateway.cli.images import images_app
from gateway.cli.ingest import ingest
from gateway.cli.keys import keys_app
from gateway.cli.models import models_app
from gateway.cli.query import ask, query_command
from gateway.cli.reindex import reindex_command
from gateway.cli.stack import SAMPLE_CORPUS, demo, down, serve, status, up
from gateway.cli.verify_access import verify_access_command
from gateway.cli.worker import worker_command

__all__ = ["SAMPLE_CORPUS", "app", "main"]

app = typer.Typer(
    help="Holdfast: an on-premise RAG gateway. Start the local stack with `holdfast up`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Commands list in `holdfast --help` in the order they are added here, then the groups.
app.command("eval")(eval_command)
app.command("audit")(audit_command)
app.command("reindex")(reindex_command)
app.command()(up)
app.command()(down)
app.command()(status)
app.command()(serve)
app.command()(ingest)
app.command("worker")(worker_command)
app.command("query")(query_command)
app.command(hidden=True)(ask)
app.command()(demo)
app.command("verify-access")(verify_access_command)
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(bundle_app, name="bundle")
app.add_typer(images_app, name="images")
app.add_typer(db_app, name="db")


def main() -> None:  # pragma: no cover - console entry for `python -m gateway.cli.main`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
