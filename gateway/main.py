"""Entry point for uvicorn's ``--factory``: settings are built here, once, and passed in."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fastapi import FastAPI

from gateway.offline import enforce_offline_env
from gateway.settings import EFFECTIVE_SETTINGS_ENV, Settings, load_settings


def _settings_from_environment() -> Settings:
    snapshot = os.environ.get(EFFECTIVE_SETTINGS_ENV)
    if snapshot:
        return load_settings(**json.loads(Path(snapshot).read_text()))
    return load_settings()


def build_app() -> FastAPI:
    enforce_offline_env()
    from gateway.api.app import create_app
    from gateway.observability.json_logs import configure_logging

    settings = _settings_from_environment()
    configure_logging(settings.logging)
    return create_app(settings)
