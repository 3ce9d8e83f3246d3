"""The composition entry: uvicorn's ``--factory`` target (``gateway.main:build_app``) and
``create_default_app``, which wires the app with the adapters ``container`` and ``ingest_jobs``
build. Settings are built here, once, and passed in.

Imports of the app and its adapters happen inside the functions: ``enforce_offline_env`` runs
before any vendor library loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.offline import enforce_offline_env
from gateway.settings import EFFECTIVE_SETTINGS_ENV, Settings, load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider

    from gateway.components import Components


def _settings_from_environment() -> Settings:
    snapshot = os.environ.get(EFFECTIVE_SETTINGS_ENV)
    if snapshot:
        return load_settings(**json.loads(Path(snapshot).read_text()))
    return load_settings()


def create_default_app(
    settings: Settings,
    components: Components | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """``create_app`` wired with the default adapters (the CLI and the tests use it)."""
    from gateway.api.app import Wiring, create_app
    from gateway.container import build_components
    from gateway.ingest_jobs import build_ingest_service

    wiring = Wiring(build_components=build_components, build_ingest=build_ingest_service)
    return create_app(settings, components, tracer_provider, wiring=wiring)


def build_app() -> FastAPI:
    enforce_offline_env()
    from gateway.observability.json_logs import configure_logging

    settings = _settings_from_environment()
    configure_logging(settings.logging)
    return create_default_app(settings)
