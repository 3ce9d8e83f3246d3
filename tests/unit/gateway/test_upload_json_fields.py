"""Upload fields sent as JSON (metadata, access_groups): strict, shallow JSON or a 400."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.api.app import Wiring, create_app
from gateway.api.problems import PROBLEM_JSON
from gateway.api.routes.documents import MAX_UPLOAD_JSON_DEPTH, _parse_groups, _parse_metadata
from gateway.security.keys import Principal
from gateway.security.rate_limit import RateLimiter
from gateway.settings import load_settings
from services.errors import InvalidRequestError

pytestmark = pytest.mark.unit

ADMIN = Principal("root", ("eng",), frozenset({"admin"}), key_id="k1")
DEEP = "[" * 2_000 + "]" * 2_000


class _Auth:
    def authenticate(self, token: str) -> Principal:
        return ADMIN

    def remembered(self, token: str) -> Principal | None:
        return None


class _AuditLog:
    def append(self, record: Any) -> None:
        pass


def _unused(*_: Any) -> Any:
    raise AssertionError("the lifespan does not run in these tests")


def _nested(depth: int) -> str:
    return '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.fixture
def client(isolated_env: Path) -> TestClient:
    """The real app; the upload is refused before any job store or worker is reached."""
    settings = load_settings(metrics={"enabled": False})
    app = create_app(settings, wiring=Wiring(build_components=_unused, build_ingest=_unused))
    app.state.components = SimpleNamespace(
        settings=settings,
        authenticator=_Auth(),
        rate_limiter=RateLimiter(rate_per_minute=600, burst=100),
        audit_log=_AuditLog(),
        redactor=None,
    )
    app.state.ingest = SimpleNamespace(jobs=None)
    return TestClient(app, raise_server_exceptions=False, headers={"Authorization": "Bearer t"})


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"metadata": DEEP}, "metadata: nested deeper than"),
        ({"metadata": '{"x": ' + DEEP + "}"}, "metadata: nested deeper than"),
        ({"access_groups": DEEP}, "access_groups: nested deeper than"),
        ({"metadata": '{"x": NaN}'}, "metadata: NaN is not a finite number"),
        ({"metadata": '{"x": [-Infinity]}'}, "metadata: -Infinity is not a finite number"),
    ],
)
def test_an_upload_with_unsafe_json_fields_is_a_400_problem(
    client: TestClient, fields: dict[str, str], expected: str
) -> None:
    response = client.post(
        "/v1/documents",
        files={"files": ("a.md", b"# hi")},
        data={"access_groups": "eng", **fields},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["detail"].startswith(expected)


@pytest.mark.parametrize("raw", ['{"x": NaN}', '{"x": Infinity}', '{"x": 1e999}'])
def test_metadata_numbers_must_be_finite(raw: str) -> None:
    """Python's reader takes them; the job response would turn them into null."""
    with pytest.raises(InvalidRequestError, match="not a finite number"):
        _parse_metadata(raw)


def test_metadata_may_nest_up_to_the_limit_and_no_deeper() -> None:
    """Deeper values were accepted, then made the job unreadable (a 500 on every GET)."""
    assert _parse_metadata(_nested(MAX_UPLOAD_JSON_DEPTH))
    with pytest.raises(InvalidRequestError, match="nested deeper than"):
        _parse_metadata(_nested(MAX_UPLOAD_JSON_DEPTH + 1))


def test_ordinary_json_fields_still_parse() -> None:
    assert _parse_metadata('{"team": "docs", "tags": ["a", 1, 2.5, null, true]}') == {
        "team": "docs",
        "tags": ["a", 1, 2.5, None, True],
    }
    assert _parse_groups('["eng", "ops", "eng"]') == ["eng", "ops"]
    with pytest.raises(InvalidRequestError, match="metadata: not valid JSON"):
        _parse_metadata("{")
