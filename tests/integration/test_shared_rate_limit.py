"""Rate limits shared across gateway replicas through a real redis-server (issue 18 item 3).

Two gateway apps, each built by the composition root (``create_default_app`` and
``build_components``, so each holds its own limiter and its own Redis client), share one Redis
and one key store. The lifespan's warm-up (Weaviate, the embedding model) plays no part in the
limit and does not run; ``GET /v1/models`` is an authenticated, limited route with no backend.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.api.problems import PROBLEM_JSON
from gateway.components import Components
from gateway.container import build_components
from gateway.main import create_default_app
from gateway.settings import Settings
from tests.integration.conftest import PORT_BASE
from tests.integration.redis_server import start_redis, stop_redis

pytestmark = pytest.mark.integration

REDIS_PORT = PORT_BASE + 80
BURST = 4  # 4 requests per 60 s window (rate 4 a minute)


def _settings(home: Path, storage_url: str) -> Settings:
    return Settings(
        home=home,
        limits={"burst": BURST, "rate_per_minute": 4, "storage_url": storage_url},
        metrics={"enabled": False},
    )


_built: list[Components] = []


def _replica(settings: Settings) -> tuple[TestClient, Components]:
    components = build_components(settings)
    _built.append(components)
    app = create_default_app(settings)
    app.state.components = components
    return TestClient(app, raise_server_exceptions=False), components


@pytest.fixture(autouse=True)
def _close_replicas() -> Iterator[None]:
    yield
    while _built:
        _built.pop().close()  # the Redis clients among them


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    process = start_redis(REDIS_PORT, tmp_path / "redis")
    try:
        yield f"redis://127.0.0.1:{REDIS_PORT}/0"
    finally:
        stop_redis(process)


def _two_replicas(settings: Settings) -> tuple[TestClient, TestClient, dict[str, str]]:
    (a, built_a), (b, built_b) = _replica(settings), _replica(settings)
    assert built_a.rate_limiter is not built_b.rate_limiter
    _, key = built_a.keys.create("tester", groups=["handbook"], roles=["query"])
    return a, b, {"Authorization": f"Bearer {key}"}


def test_the_burst_is_shared_by_two_replicas_on_one_redis(tmp_path: Path, redis_url: str) -> None:
    a, b, auth = _two_replicas(_settings(tmp_path / "home", redis_url))
    passed = [client.get("/v1/models", headers=auth).status_code for client in (a, b, a, b)]
    assert passed == [200] * BURST
    for client in (a, b):  # the fifth and sixth, split across the replicas
        refused = client.get("/v1/models", headers=auth)
        assert refused.status_code == 429
        assert refused.headers["content-type"].startswith(PROBLEM_JSON)
        assert refused.json()["code"] == "rate_limited"
        assert 55 <= int(refused.headers["retry-after"]) <= 60  # the burst leaves the window
    _, other = _replica(_settings(tmp_path / "home", redis_url))[1].keys.create(
        "other", groups=["handbook"], roles=["query"]
    )
    assert b.get("/v1/models", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_without_a_storage_url_each_replica_counts_alone(tmp_path: Path) -> None:
    """The control: the same six requests pass when every replica keeps its own count."""
    a, b, auth = _two_replicas(_settings(tmp_path / "home", ""))
    codes = [client.get("/v1/models", headers=auth).status_code for client in (a, b) * 3]
    assert codes == [200] * 6


def test_an_unreachable_redis_fails_closed_with_503_and_recovers(tmp_path: Path) -> None:
    process = start_redis(REDIS_PORT, tmp_path / "redis")
    try:
        a, b, auth = _two_replicas(
            _settings(tmp_path / "home", f"redis://127.0.0.1:{REDIS_PORT}/0")
        )
        assert a.get("/v1/models", headers=auth).status_code == 200

        os.kill(process.pid, signal.SIGSTOP)  # a hung Redis: the call times out
        try:
            started = time.monotonic()
            hung = a.get("/v1/models", headers=auth)
            waited = time.monotonic() - started
        finally:
            os.kill(process.pid, signal.SIGCONT)
        assert hung.status_code == 503 and hung.json()["code"] == "rate_limiter_unavailable"
        assert 0.4 <= waited < 2.0, waited

        stop_redis(process)  # a stopped Redis: refused at once, on both replicas
        for client in (a, b):
            started = time.monotonic()
            down = client.get("/v1/models", headers=auth)
            assert time.monotonic() - started < 2.0
            assert down.status_code == 503
            assert down.headers["content-type"].startswith(PROBLEM_JSON)
            assert down.json()["code"] == "rate_limiter_unavailable"

        process = start_redis(REDIS_PORT, tmp_path / "redis")
        assert a.get("/v1/models", headers=auth).status_code == 200
        assert b.get("/v1/models", headers=auth).status_code == 200
    finally:
        stop_redis(process)
