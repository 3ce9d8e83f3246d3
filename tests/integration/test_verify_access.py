"""``holdfast verify-access`` against the real test stack, as a customer's ops would run it:
keys of different groups (no canaries given, cross-key mode), exit 0; a refused key, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import LiveStack
from tests.integration.planted import plant

pytestmark = pytest.mark.integration

HOLDFAST = str(Path(sys.executable).with_name("holdfast"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOLDFAST, "verify-access", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "COLUMNS": "120"},
    )


def test_verify_access_passes_on_a_stack_whose_groups_hold(
    live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    planted = plant(live_stack, tmp_path_factory.mktemp("canaries"))
    keys = [planted.uploaders[g].key for g in ("alpha", "bravo", "charlie")]
    result = _run(
        *(a for k in keys for a in ("--key", k)),
        "--url",
        live_stack.url,
        "--seed",
        "16",
        "--probes",
        "80",
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no leaks found" in result.stdout and "seed 16" in result.stdout
    assert "search" in result.stdout and "document-delete" in result.stdout
    assert all(key not in result.stdout + result.stderr for key in keys)


def test_verify_access_names_the_refused_key(live_stack: LiveStack) -> None:
    result = _run(
        "--key", live_stack.handbook_key, "--key", "hf_not_a_key", "--url", live_stack.url
    )
    assert result.returncode == 2
    assert "key #2" in result.stderr and "401" in result.stderr
