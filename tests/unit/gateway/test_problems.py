"""RFC 9457 problem responses: shape, status, headers, and no echo of user or internal text."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from gateway.api.problems import PROBLEM_JSON, install_problem_handlers
from services.errors import AuthenticationError, NotFoundError, StoreUnavailableError

pytestmark = pytest.mark.unit

FIELDS = {"type", "title", "status", "detail", "instance", "code", "request_id"}


class Item(BaseModel):
    count: int
    name: str


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/auth")
    def auth() -> None:
        raise AuthenticationError("missing bearer token")

    @app.get("/missing")
    def missing() -> None:
        raise NotFoundError("no such document")

    @app.get("/documents/{doc_id}")
    def document(doc_id: str) -> None:
        raise NotFoundError("no such document")

    @app.get("/store")
    def store() -> None:
        raise StoreUnavailableError("vector store did not answer")

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("db password=hunter2 at 10.0.0.7")

    @app.post("/items")
    def items(item: Item) -> dict[str, int]:
        return {"count": item.count}

    return TestClient(app, raise_server_exceptions=False)


def test_holdfast_error_is_a_problem_json_with_every_field(client: TestClient) -> None:
    response = client.get("/missing")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert set(body) == FIELDS
    assert body["type"].endswith("/not_found")
    assert (body["status"], body["code"], body["title"]) == (404, "not_found", "Not found")
    assert body["detail"] == "no such document"
    assert body["instance"] == "/missing"
    assert body["request_id"]


def test_the_instance_is_the_route_template_not_the_callers_path(client: TestClient) -> None:
    by_route = client.get("/documents/684-66-2129").json()
    assert by_route["instance"] == "/documents/{doc_id}"
    unrouted = client.get("/nowhere/684-66-2129")
    assert unrouted.status_code == 404 and "684-66-2129" not in unrouted.text


def test_unauthenticated_carries_www_authenticate_bearer(client: TestClient) -> None:
    response = client.get("/auth")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthenticated"


def test_other_errors_carry_no_www_authenticate(client: TestClient) -> None:
    assert "www-authenticate" not in client.get("/missing").headers


def test_backend_unavailable_maps_to_503_with_its_code(client: TestClient) -> None:
    response = client.get("/store")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == "store_unavailable"


def test_unexpected_error_is_500_without_its_message(client: TestClient) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert set(body) == FIELDS
    assert body["code"] == "internal_error"
    assert "hunter2" not in response.text
    assert "10.0.0.7" not in response.text


def test_validation_error_names_the_field_but_not_the_value(client: TestClient) -> None:
    response = client.post("/items", json={"count": "secret-value-123", "name": "ok"})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert set(body) == FIELDS
    assert body["code"] == "validation_failed"
    assert "count" in body["detail"]
    assert "name" not in body["detail"]
    assert "secret-value-123" not in response.text


def test_missing_field_is_named(client: TestClient) -> None:
    response = client.post("/items", json={"count": 1})
    assert response.status_code == 422
    assert "name" in response.json()["detail"]


def test_unknown_route_is_a_problem_json(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == "http_404"


@pytest.mark.parametrize("path", ["/missing", "/boom"])
def test_x_request_id_is_echoed_as_request_id(client: TestClient, path: str) -> None:
    response = client.get(path, headers={"X-Request-ID": "req-abc-123"})
    assert response.json()["request_id"] == "req-abc-123"
    assert response.headers["x-request-id"] == "req-abc-123"


def test_request_id_is_generated_when_absent(client: TestClient) -> None:
    first = client.get("/missing").json()["request_id"]
    second = client.get("/missing").json()["request_id"]
    assert first and second and first != second
