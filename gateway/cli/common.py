"""What the ``holdfast`` command groups share: consoles, the error exit, settings, CSV options."""

from __future__ import annotations

import os
import re
from typing import NoReturn

import httpx
import typer
import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from gateway.offline import enforce_offline_env
from gateway.settings import ENV_PREFIX, Settings, config_path, load_settings

out = Console()
err = Console(stderr=True)

_SETTINGS_FIELD = re.compile(r'field "(\w+)"')


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr; the command goes on (its work is already done)."""
    err.print(f"[bold yellow]warning:[/] {message}", highlight=False)


def cli_settings() -> Settings:
    """The settings, built once per command. Every way a source can be broken (the YAML file,
    a ``HOLDFAST_*`` variable, ``database.url_file``) exits with one line naming it."""
    enforce_offline_env()
    try:
        settings = load_settings()
    except ValidationError as exc:
        fail(_invalid_setting(exc))
    except SettingsError as exc:
        fail(_unparsable_env_var(exc))
    except (yaml.YAMLError, OSError, ValueError, TypeError) as exc:
        if not config_path().is_file():
            raise  # not the file's fault: a bug, so keep its traceback
        fail(_broken_config_file(exc))
    _check_database_url_file(settings)
    return settings


def _invalid_setting(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"invalid setting {where}: {first['msg']} (file {config_path()}, or HOLDFAST_* env)"


def _unparsable_env_var(exc: SettingsError) -> str:
    """pydantic-settings names only the field; name the variables that feed it."""
    match = _SETTINGS_FIELD.search(str(exc))
    if match is None or "EnvSettingsSource" not in str(exc):
        return f"{exc}; check {config_path()} and the HOLDFAST_* environment variables"
    name = ENV_PREFIX + match.group(1).upper()
    found = sorted(v for v in os.environ if v.upper() == name or v.upper().startswith(name + "__"))
    return (
        f"cannot parse {' or '.join(found) or name}: not valid JSON for a section; "
        "fix or unset it (nested keys also go in HOLDFAST_SECTION__KEY variables)"
    )


def _broken_config_file(exc: Exception) -> str:
    path = config_path()
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return (
            f"{path} is not valid YAML: {exc.problem} at line {mark.line + 1}, "
            f"column {mark.column + 1}; fix it, or point HOLDFAST_CONFIG at another file"
        )
    if isinstance(exc, yaml.YAMLError):
        return f"{path} is not valid YAML ({type(exc).__name__}); fix it"
    if isinstance(exc, OSError):
        return f"cannot read {path} ({exc.strerror}); fix its permissions"
    if isinstance(exc, UnicodeDecodeError):
        return f"{path} is not UTF-8 text; save it as UTF-8"
    return (
        f"{path} must be a mapping of sections (gateway:, database:, ...) at its top level, "
        "not a list or a single value; fix it"
    )


def _check_database_url_file(settings: Settings) -> None:
    """``database.url_file`` is read lazily: a missing file would otherwise surface as a
    traceback deep inside whichever command first opens the database."""
    try:
        settings.database.dsn()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        fail(
            f"cannot read database.url_file {settings.database.url_file} ({reason}); "
            "create or mount it, or unset database.url_file"
        )


def checked_url(url: str, source: str = "--url") -> str:
    """``url`` without its trailing slash, or ``ValueError`` naming ``source``: httpx raises
    ``InvalidURL`` (no ``HTTPError``) for a malformed one only once a request is sent."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(
            f"{source} {url!r} is not a valid URL ({exc}); e.g. http://127.0.0.1:8080"
        ) from exc
    if parsed.scheme not in {"http", "https"} or not parsed.host:
        raise ValueError(
            f"{source} {url!r} needs http:// or https:// and a host; e.g. http://127.0.0.1:8080"
        )
    return url.rstrip("/")


def gateway_base(url: str | None, settings: Settings) -> str:
    """``--url`` or the configured gateway URL, checked before any request is sent."""
    try:
        return checked_url(
            url or settings.gateway.base_url, "--url" if url else "gateway.host/port"
        )
    except ValueError as exc:
        fail(str(exc))


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
