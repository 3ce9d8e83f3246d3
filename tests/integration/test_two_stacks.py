"""Two stacks with different HOLDFAST_HOME and ports run side by side, apart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.local import stack
from gateway.security.keys import KeyStore
from tests.integration.conftest import PORT_BASE, LiveStack, stack_settings

pytestmark = pytest.mark.integration


def test_second_stack_runs_beside_the_first(live_stack: LiveStack, tmp_path: Path) -> None:
    gguf = stack.packaged_gguf(live_stack.settings)  # reuse the assembled file, not a copy
    second = stack_settings(
        tmp_path / "second", base_port=PORT_BASE + 100, ollama={"gguf_path": gguf}
    )
    try:
        result = stack.up(second)
        assert {p.name for p in result.started} == {"weaviate", "ollama", "gateway"}
        first_pids = {n: s.pid for n, s in stack.process_states(live_stack.settings).items()}
        second_pids = {n: s.pid for n, s in stack.process_states(second).items()}
        assert not set(first_pids.values()) & set(second_pids.values())
        for settings in (live_stack.settings, second):
            assert httpx.get(f"{settings.gateway.base_url}/readyz", timeout=5).status_code == 200
        # separate key stores: the first stack's key means nothing to the second
        response = httpx.post(
            f"{second.gateway.base_url}/v1/search",
            json={"query": "annual leave"},
            headers={"Authorization": f"Bearer {live_stack.handbook_key}"},
            timeout=30,
        )
        assert response.status_code == 401
        _, key = KeyStore(second.keys_db).create("t", groups=["handbook"], roles=["query"])
        hits = httpx.post(
            f"{second.gateway.base_url}/v1/search",
            json={"query": "annual leave"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()["results"]
        assert hits == [], "the second stack's Weaviate is empty: nothing leaked across"
    finally:
        stopped = stack.down(second)
    assert all(stopped.values())
    assert httpx.get(f"{live_stack.url}/readyz", timeout=5).status_code == 200
