"""What every route must do, found by walking the real app's routes, so a route added later
without it fails here: a route that asks for credentials counts the request against the caller's
rate limit, and no route's dependencies send it through a worker thread."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from gateway.api.app import Wiring, create_app
from gateway.security.keys import Principal
from gateway.security.rate_limit import RateLimiter
from gateway.settings import load_settings

pytestmark = pytest.mark.unit


class _Auth:
    """Any token is a principal with every role; its key id is the token, so each route under
    test draws on its own count."""

    def authenticate(self, token: str) -> Principal:
        return Principal("caller", ("eng",), frozenset({"admin", "ingest", "query"}), key_id=token)

    def remembered(self, token: str) -> Principal | None:
        return None  # never remembered: every request takes the lookup path


class _AuditLog:
    def append(self, record: Any) -> None:
        pass


def _unused(*_: Any) -> Any:
    raise AssertionError("the lifespan does not run in these tests")


@pytest.fixture
def app(isolated_env: Path) -> FastAPI:
    settings = load_settings(metrics={"enabled": True, "require_auth": True})
    app = create_app(settings, wiring=Wiring(build_components=_unused, build_ingest=_unused))
    # Only what authentication, the limit and the audit middleware touch: a handler that gets
    # further may fail (500) on the first call; the second call must stop at the limit.
    app.state.components = SimpleNamespace(
        settings=settings,
        authenticator=_Auth(),
        rate_limiter=RateLimiter(rate_per_minute=0.001, burst=1),
        audit_log=_AuditLog(),
    )
    app.state.ingest = SimpleNamespace()
    return app


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """The app's routes, through included routers (FastAPI keeps those as branches)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def _endpoints(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method, re.sub(r"\{[^}]+\}", "x1", route.path))
        for route in _api_routes(app.routes)
        for method in route.methods - {"HEAD", "OPTIONS"}
    )


def test_every_authenticated_route_refuses_a_key_over_its_limit_with_429(app: FastAPI) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    authenticated = []
    for i, (method, path) in enumerate(_endpoints(app)):
        if client.request(method, path).status_code != 401:
            continue  # public: /healthz, /readyz, the OpenAPI pages
        authenticated.append(path)
        headers = {"Authorization": f"Bearer key-{i}"}
        first = client.request(method, path, headers=headers)
        assert first.status_code != 429, (method, path)
        second = client.request(method, path, headers=headers)
        assert second.status_code == 429, (method, path, second.status_code)
        assert second.json()["code"] == "rate_limited"
        assert int(second.headers["retry-after"]) >= 1
    for known in ("/v1/query", "/v1/search", "/v1/documents", "/v1/jobs/x1", "/metrics"):
        assert known in authenticated
    assert "/admin/reload" in authenticated and "/v1/models" in authenticated
    assert len(authenticated) >= 12  # 12 such routes when this test was written


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _runs_on_the_event_loop(call: Any) -> bool:
    """FastAPI awaits a coroutine function (or an object with one as ``__call__``, such as its
    security schemes) and sends anything else to a worker thread."""
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 - the method, not callability
    )


def test_no_route_dependency_takes_a_worker_thread(app: FastAPI) -> None:
    """A plain ``def`` dependency costs each request a thread round trip (about 0.2 ms measured
    on /v1/search) for work that does no I/O; blocking work belongs in the handler's own
    thread."""
    found = {
        (route.path, getattr(dep.call, "__qualname__", repr(dep.call)))
        for route in _api_routes(app.routes)
        for dep in _dependencies(route.dependant)
        if dep.call is not None and not _runs_on_the_event_loop(dep.call)
    }
    assert found == set()
    assert any(  # the walk reaches the shared dependencies (credentials, the caller's limit)
        getattr(dep.call, "__name__", "") == "get_components"
        for route in _api_routes(app.routes)
        for dep in _dependencies(route.dependant)
    )
