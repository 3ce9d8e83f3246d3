"""``holdfast models list|check``: what serves each alias, and whether a file would load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli.common import cli_settings
from gateway.models.config import ModelEntry, ModelsConfig, load_models, resolve_models
from services.errors import HoldfastError
from services.records import HealthStatus

# Adapters (and their vendor libraries) are imported inside the commands: `holdfast --help`
# stays fast.

models_app = typer.Typer(help="List model aliases and check models.yaml.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def entry_health(config: ModelsConfig, entry: ModelEntry) -> HealthStatus:
    """A cheap reachability check of the server behind one alias (no model call)."""
    from gateway.container import embedder_for, reranker_for
    from services.litellm_router import LiteLLMRouter

    mode = entry.model_info.mode
    if entry.is_local:
        return HealthStatus(mode, True, "in-process")
    if mode == "chat":
        router = LiteLLMRouter(config.litellm_model_list(), probe_timeout_s=2.0)
        return router.health(entry.model_name)
    part = embedder_for(entry) if mode == "embedding" else reranker_for(entry)
    try:
        return part.health()
    finally:
        part.close()  # type: ignore[union-attr]


@models_app.command("list")
def list_models() -> None:
    """Aliases, the provider model behind each, timeouts, fallbacks and health."""
    settings = cli_settings()
    try:
        config = resolve_models(settings)
    except HoldfastError as exc:
        _fail(str(exc))
    fallbacks = config.fallback_map()
    table = Table()
    table.add_column("alias", no_wrap=True, min_width=14)
    for name in ("mode", "model", "api_base", "timeout", "retries", "fallbacks"):
        table.add_column(name)
    table.add_column("health", no_wrap=True, min_width=4)
    for entry in config.model_list:
        health = entry_health(config, entry)
        table.add_row(
            entry.model_name,
            entry.model_info.mode,
            entry.model,
            entry.api_base or "-",
            f"{entry.timeout_s:g}s",
            str(entry.max_retries),
            ", ".join(fallbacks.get(entry.model_name, [])) or "-",
            ("[green]up[/]" if health.ok else "[red]down[/]")
            + (f" {health.detail}" if health.detail and not health.ok else ""),
        )
    out.print(table)
    out.print(
        f"file: {settings.models_path}{'' if settings.models_path.exists() else ' (defaults)'}"
    )


@models_app.command("check")
def check_models(
    file: Annotated[
        Path | None, typer.Argument(help="A models.yaml to check (default: the live one).")
    ] = None,
    probe: Annotated[bool, typer.Option(help="Send a tiny request to every alias.")] = True,
) -> None:
    """Validate a models file and probe each alias, without swapping anything."""
    from gateway.container import AdapterModels
    from gateway.models.reload import prepare

    settings = cli_settings()
    path = file or settings.models_path
    try:
        config = load_models(path)
        if probe:
            _, _, probed = prepare(settings, config, None, builder=AdapterModels(settings))
            out.print(f"probed: {', '.join(probed)}")
    except HoldfastError as exc:
        _fail(str(exc))
    out.print(f"{path}: OK ({len(config.model_list)} aliases)")
