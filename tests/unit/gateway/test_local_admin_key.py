"""``holdfast up``'s first admin key: a failed write of its secret file strands nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.local import stack
from gateway.security.keys import KeyStore
from gateway.settings import Settings, load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return load_settings()


def test_the_admin_key_is_saved_and_authenticates_as_admin(settings: Settings) -> None:
    key = stack.ensure_admin_key(settings)
    assert key is not None
    assert settings.admin_key_file.read_text().strip() == key
    principal = KeyStore(settings.keys_db).authenticate(key)
    assert principal is not None and "admin" in principal.roles
    assert stack.ensure_admin_key(settings) is None, "one admin key, not one per `up`"


def test_a_failed_secret_write_leaves_no_admin_key_so_the_next_up_makes_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path, value: str) -> None:
        raise OSError(28, "No space left on device", str(path))

    with monkeypatch.context() as patched:
        patched.setattr(stack, "write_secret", disk_full)
        with pytest.raises(OSError, match="No space left"):
            stack.ensure_admin_key(settings)
    assert not KeyStore(settings.keys_db).has_active_role("admin")
    key = stack.ensure_admin_key(settings)
    assert key is not None and settings.admin_key_file.read_text().strip() == key
    assert KeyStore(settings.keys_db).authenticate(key) is not None
