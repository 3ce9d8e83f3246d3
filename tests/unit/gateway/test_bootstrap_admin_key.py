"""The platform's bootstrap admin key (HOLDFAST_BOOTSTRAP_ADMIN_KEY) at startup."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.app import BOOTSTRAP_ADMIN_KEY_ENV, _bootstrap_admin_key
from services.errors import ConfigError

pytestmark = pytest.mark.unit


class FakeKeys:
    def __init__(self) -> None:
        self.imported: list[str] = []

    def import_key(self, key: str, name: str, *, groups: Any, roles: Any) -> str:
        self.imported.append(key)
        return "k1"


class FakeAudit:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def append(self, record: Any) -> None:
        self.records.append(record)


class FakeComponents:
    def __init__(self) -> None:
        self.keys, self.audit_log = FakeKeys(), FakeAudit()


def test_a_key_without_the_prefix_stops_startup_and_says_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # seen under podman: the chart README's `openssl rand -hex 32` key was stored, then every
    # request with it got 401
    monkeypatch.setenv(BOOTSTRAP_ADMIN_KEY_ENV, "0123456789abcdef" * 4)
    components = FakeComponents()
    with pytest.raises(ConfigError, match=r"must start with 'hf_'.*openssl rand"):
        _bootstrap_admin_key(components)  # type: ignore[arg-type]
    assert components.keys.imported == [] and components.audit_log.records == []


def test_a_prefixed_key_is_imported_and_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BOOTSTRAP_ADMIN_KEY_ENV, "hf_" + "a" * 43)
    components = FakeComponents()
    _bootstrap_admin_key(components)  # type: ignore[arg-type]
    assert components.keys.imported == ["hf_" + "a" * 43]
    assert [r.action for r in components.audit_log.records] == ["key.imported"]


def test_no_key_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOTSTRAP_ADMIN_KEY_ENV, raising=False)
    components = FakeComponents()
    _bootstrap_admin_key(components)  # type: ignore[arg-type]
    assert components.keys.imported == []
