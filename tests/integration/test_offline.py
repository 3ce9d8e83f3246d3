"""The main command works with no network at all: run `holdfast demo` inside a network namespace
that has only loopback. Anything that tried to reach out would fail there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.audit.records import AuditFilter
from gateway.container import build_audit_log
from gateway.local import stack
from gateway.settings import Settings
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


def test_demo_answers_with_citations_inside_a_loopback_only_namespace(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    assert unshare and ip, "needs util-linux unshare and iproute2 ip (make setup installs them)"
    holdfast = Path(sys.executable).parent / "holdfast"
    env = {
        **os.environ,
        "HOLDFAST_HOME": str(tmp_path / "offline"),
        "HOLDFAST_OLLAMA__GGUF_PATH": str(stack.packaged_gguf(live_stack.settings)),
    }
    env.pop("HOLDFAST_CONFIG", None)
    script = (
        f"{ip} link set lo up && "
        f"! {ip} route get 1.1.1.1 >/dev/null 2>&1 && "  # proves there is no route out
        f"{holdfast} demo; rc=$?; {holdfast} down; exit $rc"
    )
    done = subprocess.run(
        [unshare, "--net", "bash", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "Citations" in output, output[-4000:]
    assert "ollama_chat/holdfast-gemma3-270m" in output
    # the admin key `holdfast up` bootstrapped is an audited admin action of that install
    audit = build_audit_log(Settings(home=tmp_path / "offline"))
    created = audit.query(AuditFilter(kind="admin", action_prefix="key.created")).records
    assert [r.detail.get("name") for r in created] == ["admin"]
