"""X-Request-ID through the real middleware stack: kept when it is a short token, else replaced;
echoed once on every response (problem responses too); in the request's log lines."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from gateway.api.problems import install_problem_handlers
from gateway.observability.json_logs import JsonFormatter
from gateway.observability.request_context import RequestIdMiddleware, name_principal
from services.errors import NotFoundError

pytestmark = pytest.mark.unit


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("holdfast.test.request_id")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/echo")
    def echo(request: Request) -> dict[str, str]:
        name_principal("alice")
        logging.getLogger("holdfast.test.request_id").info("answered")
        return {"state": request.state.request_id}

    @app.get("/missing")
    def missing() -> None:
        raise NotFoundError("no such document")

    return TestClient(app)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [("abc-123", True), ("x" * 129, False), ("has space", False), ("jane@example.com", False)],
)
def test_request_ids_are_short_tokens_or_replaced(client: TestClient, raw: str, kept: bool) -> None:
    response = client.get("/echo", headers={"X-Request-ID": raw})
    rid = response.headers["x-request-id"]
    assert (rid == raw) is kept
    assert response.json()["state"] == rid
    if not kept:
        assert len(rid) == 32 and raw not in response.text


def test_an_id_is_minted_per_request_when_none_is_sent(client: TestClient) -> None:
    first = client.get("/echo").headers["x-request-id"]
    second = client.get("/echo").headers["x-request-id"]
    assert first and second and first != second


def test_a_problem_response_carries_the_id_once_in_header_and_body(client: TestClient) -> None:
    response = client.get("/missing", headers={"X-Request-ID": "req-404"})
    assert response.status_code == 404
    assert response.headers.get_list("x-request-id") == ["req-404"]
    assert response.json()["request_id"] == "req-404"


def test_the_requests_log_lines_carry_its_id_and_principal(
    client: TestClient, logs: io.StringIO
) -> None:
    client.get("/echo", headers={"X-Request-ID": "req-log-1"})
    (line,) = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert (line["request_id"], line["principal"]) == ("req-log-1", "alice")
