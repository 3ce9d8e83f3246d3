"""What the ``holdfast`` command groups share: consoles, the error exit, settings, CSV options."""

from __future__ import annotations

from typing import NoReturn

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console

from gateway.offline import enforce_offline_env
from gateway.settings import Settings, config_path, load_settings

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def cli_settings() -> Settings:
    """The settings, built once per command; an invalid one exits naming the field."""
    enforce_offline_env()
    try:
        return load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        fail(f"invalid setting {where}: {first['msg']} (file {config_path()}, or HOLDFAST_* env)")


def split_csv(values: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [v.strip() for v in values.split(",") if v.strip()]


def problem_text(response: httpx.Response) -> str:
    """A one-line summary of the gateway's problem+json answer (or just its status)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"{body.get('title', 'error')}: {body.get('detail', '')} (HTTP {response.status_code})"
