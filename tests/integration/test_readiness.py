"""/readyz follows the real dependencies: a killed Weaviate is reported within two seconds."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from gateway.local import stack
from gateway.local.processes import ProcessSupervisor
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


def _readyz(live_stack: LiveStack) -> httpx.Response:
    return httpx.get(f"{live_stack.url}/readyz", timeout=5.0)


def test_healthz_and_readyz_report_every_dependency(live_stack: LiveStack) -> None:
    assert httpx.get(f"{live_stack.url}/healthz", timeout=5.0).json() == {"status": "ok"}
    response = _readyz(live_stack)
    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"weaviate", "llm", "embeddings", "redactor"}


def test_killed_weaviate_makes_readyz_503_within_two_seconds_and_restart_recovers(
    live_stack: LiveStack,
) -> None:
    settings = live_stack.settings
    supervisor = ProcessSupervisor(settings.run_dir, settings.logs_dir)
    state = supervisor.state("weaviate")
    assert state.running and state.pid
    os.kill(state.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    while True:
        response = _readyz(live_stack)
        if response.status_code == 503:
            break
        assert time.monotonic() - killed_at < 2.0, "readyz still 200 two seconds after the kill"
        time.sleep(0.1)
    assert time.monotonic() - killed_at < 2.0
    checks = response.json()["checks"]
    assert checks["weaviate"]["ok"] is False
    assert checks["llm"]["ok"] is True

    supervisor.start(stack.weaviate_spec(settings))
    deadline = time.monotonic() + 60
    while _readyz(live_stack).status_code != 200:
        assert time.monotonic() < deadline, "readyz did not recover after Weaviate restarted"
        time.sleep(0.5)
    # and the data survived the crash: queries still find the handbook
    hits = live_stack.post(
        "/v1/search", {"query": "annual leave", "top_k": 3}, live_stack.handbook_key
    ).json()["results"]
    assert hits
