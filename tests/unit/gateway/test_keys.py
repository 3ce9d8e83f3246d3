"""KeyStore: keys are shown once, stored only as hashes, and revocable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.security.keys import KeyStore, Principal
from services.errors import InvalidRequestError, NotFoundError

pytestmark = pytest.mark.unit


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "holdfast.db"


@pytest.fixture
def store(db_path: Path) -> KeyStore:
    return KeyStore(db_path)


def test_created_key_starts_with_hf_and_authenticates_with_its_groups_and_roles(
    store: KeyStore,
) -> None:
    key_id, key = store.create("alice", groups=["hr", " eng "], roles=["query", "ingest"])
    assert key.startswith("hf_")
    assert len(key) > 40
    assert store.authenticate(key) == Principal(
        name="alice", groups=("eng", "hr"), roles=frozenset({"query", "ingest"}), key_id=key_id
    )


def test_each_created_key_is_unique(store: KeyStore) -> None:
    a = store.create("a", groups=["g"], roles=["query"])
    b = store.create("a", groups=["g"], roles=["query"])
    assert a[0] != b[0] and a[1] != b[1]


def test_unknown_key_does_not_authenticate(store: KeyStore) -> None:
    store.create("alice", groups=["hr"], roles=["query"])
    assert store.authenticate("hf_not-a-real-key") is None


def test_database_file_never_contains_the_key_text(store: KeyStore, db_path: Path) -> None:
    _, key = store.create("alice", groups=["hr"], roles=["query"])
    raw = b"".join(p.read_bytes() for p in db_path.parent.iterdir())
    assert b"alice" in raw  # the file is the one written to
    assert key.encode() not in raw
    assert key[3:].encode() not in raw


def test_revoke_by_id_makes_the_key_fail_authentication(store: KeyStore) -> None:
    key_id, key = store.create("alice", groups=["hr"], roles=["query"])
    _, other = store.create("bob", groups=["hr"], roles=["query"])
    assert store.revoke(key_id) == 1
    assert store.authenticate(key) is None
    assert store.authenticate(other) is not None


def test_revoke_by_name_revokes_every_active_key_of_that_name(store: KeyStore) -> None:
    _, k1 = store.create("ci", groups=["eng"], roles=["ingest"])
    _, k2 = store.create("ci", groups=["eng"], roles=["ingest"])
    _, keep = store.create("alice", groups=["eng"], roles=["query"])
    assert store.revoke("ci") == 2
    assert store.authenticate(k1) is None
    assert store.authenticate(k2) is None
    assert store.authenticate(keep) is not None
    revoked = {k.name: k.revoked_at for k in store.list()}
    assert revoked["ci"] is not None and revoked["alice"] is None


def test_revoking_unknown_key_raises_not_found(store: KeyStore) -> None:
    with pytest.raises(NotFoundError):
        store.revoke("nope")


def test_revoking_twice_raises_not_found(store: KeyStore) -> None:
    key_id, _ = store.create("alice", groups=["hr"], roles=["query"])
    store.revoke(key_id)
    with pytest.raises(NotFoundError):
        store.revoke(key_id)


def test_unknown_role_is_rejected_naming_the_role(store: KeyStore) -> None:
    with pytest.raises(InvalidRequestError, match="superuser"):
        store.create("alice", groups=["hr"], roles=["query", "superuser"])
    assert store.list() == []


@pytest.mark.parametrize("groups", [[], ["", "  "]])
def test_empty_groups_are_rejected(store: KeyStore, groups: list[str]) -> None:
    with pytest.raises(InvalidRequestError, match="group"):
        store.create("alice", groups=groups, roles=["query"])


def test_empty_roles_are_rejected(store: KeyStore) -> None:
    with pytest.raises(InvalidRequestError, match="role"):
        store.create("alice", groups=["hr"], roles=[])


def test_blank_name_is_rejected(store: KeyStore) -> None:
    with pytest.raises(InvalidRequestError, match="name"):
        store.create("  ", groups=["hr"], roles=["query"])


def test_import_key_is_idempotent(store: KeyStore) -> None:
    key = "hf_minted-elsewhere-0123456789"
    first = store.import_key(key, "admin", groups=["all"], roles=["admin"])
    second = store.import_key(key, "admin", groups=["all"], roles=["admin"])
    assert first == second
    assert len(store.list()) == 1
    principal = store.authenticate(key)
    assert principal is not None
    assert (principal.name, principal.roles, principal.key_id) == (
        "admin",
        frozenset({"admin"}),
        first,
    )


def test_import_key_rejects_unknown_role(store: KeyStore) -> None:
    with pytest.raises(InvalidRequestError):
        store.import_key("hf_x-0123456789", "admin", groups=["all"], roles=["admni"])


def test_has_active_role_ignores_revoked_keys(store: KeyStore) -> None:
    key_id, _ = store.create("root", groups=["all"], roles=["admin"])
    assert store.has_active_role("admin")
    store.revoke(key_id)
    assert not store.has_active_role("admin")
