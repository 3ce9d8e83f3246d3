"""``holdfast keys create|list|revoke``: API keys in the local key store (only hashes stored)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gateway.cli.audit import record_key_action
from gateway.cli.common import cli_settings, fail, out, split_csv
from services.errors import HoldfastError

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups the key may read.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles: query, ingest, admin.")
    ] = "query",
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from gateway.container import build_key_store

    settings = cli_settings()
    try:
        key_id, key = build_key_store(settings).create(
            name, groups=split_csv(groups), roles=split_csv(roles)
        )
    except HoldfastError as exc:
        fail(str(exc))
    record_key_action(settings, "key.created", key_id=key_id, name=name)
    out.print(f"key id {key_id} for {name}; the key (shown once):")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, groups, roles; never the keys themselves)."""
    from gateway.container import build_key_store

    table = Table("id", "name", "groups", "roles", "created", "revoked")
    for k in build_key_store(cli_settings()).list():
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
    from gateway.container import build_key_store

    settings = cli_settings()
    try:
        count = build_key_store(settings).revoke(key)
    except HoldfastError as exc:
        fail(str(exc))
    record_key_action(settings, "key.revoked", target=key, count=str(count))
    out.print(f"revoked {count} key(s)")
