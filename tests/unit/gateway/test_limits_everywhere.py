"""The body-size limit holds for chunked uploads, and the per-key rate limit covers the
ingestion, documents and jobs routes too (the real app factory; no backing service)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import Wiring, create_app
from gateway.api.problems import PROBLEM_JSON
from gateway.security.keys import Principal
from gateway.security.rate_limit import RateLimiter
from gateway.settings import Settings, load_settings
from services.errors import NotFoundError

pytestmark = pytest.mark.unit

BURST = 3
CALLER = Principal("ingester", ("eng",), frozenset({"ingest", "query"}), key_id="k1")


class _Auth:
    def authenticate(self, token: str) -> Principal:
        return CALLER

    def remembered(self, token: str) -> Principal | None:
        return None  # never remembered: every request takes the lookup path


class _Store:
    def documents(self, **_: Any) -> list[Any]:
        return []

    def document(self, doc_id: str) -> None:
        return None


class _Jobs:
    def get(self, job_id: str) -> Any:
        raise NotFoundError("no such job")


class _AuditLog:
    def append(self, record: Any) -> None:
        pass


def _unused(*_: Any) -> Any:
    raise AssertionError("the lifespan does not run in these tests")


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return load_settings(
        limits={"max_body_bytes": 2_000},
        ingestion={"max_file_mb": 0.01, "max_files_per_job": 1},  # uploads: 10,485 bytes
        metrics={"enabled": False},
    )


@pytest.fixture
def client(settings: Settings) -> TestClient:
    app = create_app(settings, wiring=Wiring(build_components=_unused, build_ingest=_unused))
    app.state.components = SimpleNamespace(
        settings=settings,
        authenticator=_Auth(),
        rate_limiter=RateLimiter(rate_per_minute=0.001, burst=BURST),
        store=_Store(),
        audit_log=_AuditLog(),
    )
    app.state.ingest = SimpleNamespace(jobs=_Jobs())
    return TestClient(app, raise_server_exceptions=False, headers={"Authorization": "Bearer t"})


def _chunks(total: int, size: int = 1024) -> Iterator[bytes]:
    boundary = b"--b0undary\r\n"
    yield boundary + b'Content-Disposition: form-data; name="files"; filename="a.md"\r\n\r\n'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size
    yield b"\r\n--b0undary--\r\n"


def test_a_chunked_upload_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    response = client.post(
        "/v1/documents",
        content=_chunks(64 * 1024),  # an iterator: sent chunked, no Content-Length
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["code"] == "body_too_large"
    assert body["request_id"]


def test_a_chunked_json_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    pieces = iter([b'{"question": "', b"a" * 3_000, b'"}'])
    response = client.post(
        "/v1/query", content=pieces, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_declared_length_over_the_limit_is_still_refused_before_reading(
    client: TestClient,
) -> None:
    response = client.post("/v1/query", content=b"x" * 3_000)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_chunked_body_under_the_limit_reaches_the_route(client: TestClient) -> None:
    response = client.post(
        "/v1/documents",
        content=_chunks(1024),
        headers={"Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    # past the limit, the route itself refuses it: for its missing access_groups
    assert response.status_code == 400, response.text
    assert "access_groups" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/documents"),
        ("DELETE", "/v1/documents/doc-1"),
        ("GET", "/v1/jobs/job-1"),
        ("POST", "/v1/documents"),
    ],
)
def test_ingestion_documents_and_jobs_routes_are_rate_limited_per_key(
    client: TestClient, method: str, path: str
) -> None:
    statuses = [client.request(method, path).status_code for _ in range(BURST + 2)]
    assert 429 not in statuses[:BURST]
    assert statuses[BURST:] == [429, 429]
    refused = client.request(method, path)
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
