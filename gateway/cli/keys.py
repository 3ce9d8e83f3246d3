"""``holdfast keys create|list|revoke``: API keys in the local key store (only hashes stored)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.audit import record_key_action_or_warn
from gateway.cli.common import cli_settings, fail, out, split_csv
from gateway.security.keys import ApiKeys
from gateway.settings import Settings
from services.errors import BackendUnavailableError, HoldfastError

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def _key_store(settings: Settings) -> ApiKeys:
    from gateway.container import build_key_store  # heavy: only once a command runs

    return build_key_store(settings)


def _reason(exc: HoldfastError) -> str:
    """The store's one line, and for a busy or down database what to do about it."""
    if isinstance(exc, BackendUnavailableError):
        return f"{exc}; try again in a moment, or check the database is up"
    return str(exc)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups the key may read.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles: query, ingest, admin.")
    ] = "query",
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    settings = cli_settings()
    try:
        key_id, key = _key_store(settings).create(
            name, groups=split_csv(groups), roles=split_csv(roles)
        )
    except HoldfastError as exc:
        fail(_reason(exc))
    out.print(f"key id {key_id} for {name}; the key (shown once):")
    print(key, flush=True)  # before the audit record: only its hash is stored
    record_key_action_or_warn(settings, "key.created", key_id=key_id, name=name)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, groups, roles; never the keys themselves)."""
    try:
        keys = _key_store(cli_settings()).list()
    except HoldfastError as exc:
        fail(_reason(exc))
    table = Table("id", "name", "groups", "roles", "created", "revoked")
    for k in keys:
        table.add_row(
            k.key_id,
            k.name,
            ",".join(k.groups),
            ",".join(k.roles),
            k.created_at,
            k.revoked_at or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id, or a name (revokes all its keys).")],
) -> None:
    """Revoke a key; it stops working at once."""
    settings = cli_settings()
    try:
        count = _key_store(settings).revoke(key)
    except HoldfastError as exc:
        fail(_reason(exc))
    out.print(f"revoked {count} key(s)")
    record_key_action_or_warn(settings, "key.revoked", target=key, count=str(count))
