"""The main command works with no network at all: run `holdfast demo` inside a network namespace
that has only loopback. Anything that tried to reach out would fail there."""

from __future__ import annotations

import os
import re
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
QUESTION = "How many days of paid annual leave do full-time employees get?"


def _answer_text(output: str) -> str:
    """The answer printed by `holdfast query`/`demo`, without the citations table."""
    return output.rsplit("Answer (", 1)[-1].split("Citations", 1)[0]


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
        f"{holdfast} demo && echo '=== query ===' && {holdfast} query {QUESTION!r}; "
        f"rc=$?; {holdfast} down; exit $rc"
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
    assert "ollama_chat/holdfast-qwen2.5-coder-0.5b" in output
    demo, query = output.split("=== query ===", 1)
    # the demo's answer (issue 15 item 5): 28 days, with the passage it comes from marked cited
    assert "28" in _answer_text(demo), demo[-3000:]
    assert re.search(r"│\s*\d+\s*│\s*yes\s*│\s*leave-policy", demo), demo[-3000:]
    # `holdfast query` with the admin key, right after the demo, answers from the sample corpus
    assert "28" in _answer_text(query) and "refused" not in query, query[-3000:]
    # the admin key `holdfast up` bootstrapped is an audited admin action of that install
    audit = build_audit_log(Settings(home=tmp_path / "offline"))
    created = audit.query(AuditFilter(kind="admin", action_prefix="key.created")).records
    assert [r.detail.get("name") for r in created] == ["admin"]
