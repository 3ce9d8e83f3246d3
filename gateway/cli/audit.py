"""``holdfast audit``: print the audit log, from the running gateway or straight from the store.

Also records the key actions the CLI performs on the local key store (``holdfast keys``), since
those never pass through the HTTP API.
"""

from __future__ import annotations

import getpass
import json
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from gateway.audit.records import AuditRecord, build_filter
from gateway.cli.common import cli_settings, gateway_base, warn
from gateway.settings import Settings
from services.errors import HoldfastError

out = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def cli_principal() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def record_key_action(settings: Settings, action: str, **detail: str) -> None:
    """Append ``key.created`` / ``key.revoked`` to the audit log the gateway also writes."""
    from gateway.container import build_audit_log

    build_audit_log(settings).append(
        AuditRecord(
            kind="admin",
            principal=cli_principal(),
            endpoint="holdfast keys",
            decision="answered",
            action=action,
            detail=detail,
        )
    )


def record_key_action_or_warn(settings: Settings, action: str, **detail: str) -> None:
    """``record_key_action`` once the key action is done and shown: the key exists whatever
    happens to the audit log, so a failure to log it is a warning, never a lost key."""
    try:
        record_key_action(settings, action, **detail)
    except (HoldfastError, OSError) as exc:
        warn(f"{action} not audit-logged ({exc}); the key action itself took effect")


def render_table(records: list[dict[str, Any]]) -> Table:
    """One line per record; ids shortened so the table fits a terminal."""
    table = Table("id", "at (UTC)", "principal", "endpoint", "decision", "action", "docs", "model")
    colours = {"answered": "green", "refused": "yellow", "denied": "red", "error": "red"}
    for r in records:
        colour = colours.get(str(r["decision"]), "white")
        docs = r["doc_ids"]
        table.add_row(
            str(r["id"]),
            str(r["at"])[:19].replace("T", " "),
            str(r["principal"]),
            str(r["endpoint"]),
            f"[{colour}]{r['decision']}[/]" + (f" ({r['reason']})" if r.get("reason") else ""),
            str(r["action"]),
            f"{len(docs)}: {','.join(d[:8] for d in docs[:3])}" if docs else "",
            str(r["model"]),
        )
    return table


def _from_api(base: str, key: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        response = httpx.get(
            f"{base}/admin/audit",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30.0,
        )
    except httpx.ConnectError:
        _fail(f"no gateway is running at {base}; start it or read the store with --local")
    except httpx.HTTPError as exc:
        _fail(f"the gateway at {base} did not answer ({type(exc).__name__})")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        _fail(
            f"{body.get('title', 'error')}: {body.get('detail', '')} (HTTP {response.status_code})"
        )
    return body


def _from_store(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    from gateway.container import build_audit_log

    flt = build_filter(**params)
    page = build_audit_log(settings).query(flt)
    return {
        "records": [r.as_dict() for r in page.records],
        "next_cursor": page.next_cursor,
    }


def audit_command(
    principal: Annotated[str | None, typer.Option(help="Only this principal.")] = None,
    decision: Annotated[
        str | None, typer.Option(help="answered, refused, denied or error.")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="e.g. 'POST /v1/query'.")] = None,
    kind: Annotated[str | None, typer.Option(help="request or admin.")] = None,
    since: Annotated[str | None, typer.Option(help="ISO 8601 time, inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 time, inclusive.")] = None,
    limit: Annotated[int, typer.Option(help="Records per page (newest first).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of an earlier page.")] = None,
    local: Annotated[
        bool, typer.Option(help="Read the audit store directly instead of the gateway's API.")
    ] = False,
    key: Annotated[
        str | None,
        typer.Option(envvar="HOLDFAST_API_KEY", help="Admin key (default: the admin key file)."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Gateway URL (default: from settings).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the page as JSON.")] = False,
) -> None:
    """Print the audit log: who asked what, the decision, which documents; admin actions."""
    settings = cli_settings()
    params: dict[str, Any] = {
        "limit": limit,
        "cursor": cursor,
        "principal": principal,
        "decision": decision,
        "endpoint": endpoint,
        "kind": kind,
        "since": since,
        "until": until,
    }
    try:
        build_filter(**params)  # the same validation as the API, before any I/O
        if local:
            body = _from_store(settings, params)
        else:
            base = gateway_base(url, settings)
            if key is None:
                if not settings.admin_key_file.exists():
                    _fail("no --key given and no admin key file; use --key or --local")
                key = settings.admin_key_file.read_text().strip()
            body = _from_api(base, key, params)
    except HoldfastError as exc:
        _fail(str(exc))
    if as_json:
        print(json.dumps(body, indent=2))
        return
    out.print(render_table(body["records"]))
    if body.get("next_cursor"):
        out.print(f"more: --cursor {body['next_cursor']}", highlight=False)
