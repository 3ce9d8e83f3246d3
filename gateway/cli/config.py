"""``holdfast config check``: validate holdfast.yaml, env overrides and models.yaml."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gateway.cli.common import cli_settings, fail, out
from gateway.settings import Settings, config_path
from services.errors import HoldfastError

config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(
    schema: Annotated[bool, typer.Option(help="Print the JSON schema of holdfast.yaml.")] = False,
) -> None:
    """Validate holdfast.yaml, env overrides and models.yaml; print the effective settings."""
    from gateway.models.config import resolve_models

    if schema:
        print(json.dumps(Settings.model_json_schema(), indent=2))
        return
    settings = cli_settings()
    try:
        models = resolve_models(settings)
    except HoldfastError as exc:
        fail(str(exc))
    out.print(f"settings OK (file: {config_path()}{'' if config_path().exists() else ', absent'})")
    out.print(
        f"models OK: {', '.join(e.model_name for e in models.model_list)} "
        f"({settings.models_path}{'' if settings.models_path.exists() else ', defaults'})"
    )
