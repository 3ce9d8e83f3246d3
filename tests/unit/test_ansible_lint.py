"""The playbook and every role pass ansible-lint's production profile (offline: no Galaxy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
ROLES = ("holdfast", "bundle", "weaviate", "llm", "embeddings", "gateway", "kubernetes")


def test_every_role_has_defaults_argument_specs_handlers_and_phased_tasks() -> None:
    for role in ROLES:
        folder = ANSIBLE_DIR / "roles" / role
        for part in ("defaults/main.yml", "meta/argument_specs.yml", "handlers/main.yml"):
            assert (folder / part).is_file(), f"{role}: {part}"
        assert "listen:" in (folder / "handlers/main.yml").read_text(), role
        assert (folder / "tasks/preflight.yml").is_file(), role


def test_ansible_lint_production_profile_passes() -> None:
    lint = Path(sys.executable).parent / "ansible-lint"
    done = subprocess.run(
        [str(lint), "--profile", "production", "--offline", "--nocolor"],
        cwd=ANSIBLE_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr
