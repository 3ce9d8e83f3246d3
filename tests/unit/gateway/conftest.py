"""Settings in unit tests come from the test alone: no HOLDFAST_* variable of the shell leaks in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean HOLDFAST_* environment with its home under ``tmp_path`` and no config file."""
    for name in list(os.environ):
        if name.startswith("HOLDFAST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOLDFAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOLDFAST_CONFIG", str(tmp_path / "absent.yaml"))
    return tmp_path
