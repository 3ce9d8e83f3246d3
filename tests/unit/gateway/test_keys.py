"""KeyStore: keys are shown once, stored only as hashes, and revocable; a database it cannot
use is a 503 (``StateUnavailableError``), never a 500."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.api.problems import install_problem_handlers
from gateway.security import keys as keys_module
from gateway.security.keys import KeyStore, Principal
from gateway.state.engine import StateUnavailableError
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


def _corrupt(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(b"not an SQLite database " * 200)


@pytest.mark.parametrize(
    "use",
    [
        lambda s: s.create("alice", groups=["hr"], roles=["query"]),
        lambda s: s.import_key("hf_x-0123456789", "admin", groups=["all"], roles=["admin"]),
        lambda s: s.authenticate("hf_anything"),
        lambda s: s.list(),
        lambda s: s.has_active_role("admin"),
        lambda s: s.revoke("alice"),
    ],
    ids=["create", "import_key", "authenticate", "list", "has_active_role", "revoke"],
)
def test_a_broken_database_is_state_unavailable_naming_no_path(
    store: KeyStore, db_path: Path, use: Callable[[KeyStore], object]
) -> None:
    _corrupt(db_path)
    with pytest.raises(StateUnavailableError, match="key database: file is not a database") as e:
        use(store)
    assert e.value.status == 503 and str(db_path) not in str(e.value)


def test_a_locked_database_is_state_unavailable(
    store: KeyStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create("alice", groups=["hr"], roles=["query"])
    connect = sqlite3.connect
    monkeypatch.setattr(  # the store waits 10 s for a lock; the test need not
        keys_module.sqlite3, "connect", lambda path, timeout: connect(path, timeout=0.05)
    )
    holder = connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateUnavailableError, match="database is locked"):
            store.create("bob", groups=["hr"], roles=["query"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [k.name for k in store.list()] == ["alice"], "nothing stored is lost"


def test_an_unreadable_key_database_answers_a_request_with_a_503_problem(
    store: KeyStore, db_path: Path
) -> None:
    _corrupt(db_path)
    api = FastAPI()
    install_problem_handlers(api)

    @api.get("/whoami")
    def whoami() -> dict[str, str]:
        principal = store.authenticate("hf_some-key")
        return {"name": principal.name if principal else ""}

    response = TestClient(api).get("/whoami")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "state_unavailable"
