"""The audit log's contract, run against both backends: SQLite and a real PostgreSQL server
(Debian's, started by this module under /tmp with pg_ctl, as the `postgres` user when run as
root). Paging, filters, every field round-tripped, and ModelAudit's records landing in it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit.records import AuditFilter, AuditRecord, build_filter
from gateway.audit.store import AuditLog, AuditUnavailableError, PostgresAuditLog, SqliteAuditLog
from gateway.container import build_audit_log
from gateway.models.audit import ModelAudit
from gateway.settings import Settings
from tests.integration.conftest import PORT_BASE
from tests.integration.pg_server import running_postgres

pytestmark = pytest.mark.integration
PG_PORT = PORT_BASE + 30


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    with running_postgres(PG_PORT) as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgres"])
def audit_log(request: pytest.FixtureRequest, tmp_path: Path) -> AuditLog:
    if request.param == "sqlite":
        return SqliteAuditLog(tmp_path / "audit.db")
    dsn = request.getfixturevalue("postgres_dsn")
    log = PostgresAuditLog(dsn)
    # a fresh table per test: the log itself offers no delete, the test's superuser does
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS audit_log")
    return log


def _record(n: int, **changes: object) -> AuditRecord:
    base: dict[str, object] = {
        "kind": "request",
        "principal": f"p{n % 3}",
        "endpoint": "POST /v1/query",
        "decision": "answered" if n % 2 else "refused",
        "at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
    }
    base.update(changes)
    return AuditRecord(**base)  # type: ignore[arg-type]


def test_pages_newest_first_with_filters(audit_log: AuditLog) -> None:
    written = [audit_log.append(_record(n)) for n in range(1, 8)]
    ids = [r.id for r in written]
    assert ids == sorted(ids) and len(set(ids)) == 7
    first = audit_log.query(AuditFilter(limit=3))
    assert [r.id for r in first.records] == ids[::-1][:3] and first.next_cursor
    second = audit_log.query(build_filter(limit=3, cursor=first.next_cursor))
    assert [r.id for r in second.records] == ids[::-1][3:6]
    third = audit_log.query(build_filter(limit=3, cursor=second.next_cursor))
    assert [r.id for r in third.records] == ids[:1] and third.next_cursor is None
    only = audit_log.query(build_filter(principal="p1", decision="answered"))
    assert {r.id for r in only.records} == {ids[0], ids[6]}
    window = audit_log.query(build_filter(since="2026-01-01T00:03:00Z", until="2026-01-01T00:05Z"))
    assert [r.id for r in window.records] == [ids[4], ids[3], ids[2]]


def test_every_field_round_trips(audit_log: AuditLog) -> None:
    stored = audit_log.append(
        _record(
            1,
            kind="admin",
            action="document.deleted",
            groups=("finance", "handbook"),
            doc_ids=("d1",),
            chunk_ids=("c1", "c2"),
            alias="chat-default",
            model="ollama/x",
            redactions={"PERSON": 2, "EMAIL_ADDRESS": 1},
            reason="low_confidence",
            status=200,
            request_id="rid",
            detail={"key_id": "abc"},
        )
    )
    assert audit_log.query(AuditFilter()).records == [stored]


def test_a_batch_lands_in_one_call_behind_the_buffered_writer(audit_log: AuditLog) -> None:
    from gateway.audit.buffered import BufferedAuditLog

    assert audit_log.append_many([_record(n) for n in range(3)]) == 3
    buffered = BufferedAuditLog(audit_log)
    for n in range(3, 40):
        assert buffered.offer(_record(n))
    page = buffered.query(AuditFilter(limit=100))  # waits for everything queued before it
    buffered.close()
    assert len(page.records) == 40
    assert [r.id for r in page.records] == sorted((r.id for r in page.records), reverse=True)


def test_a_nul_in_a_name_is_written_not_refused_and_the_log_goes_on(
    audit_log: AuditLog,
) -> None:
    """A key named with a NUL (PostgreSQL text cannot hold one) used to be refused over and
    over, stalling the buffered writer and every request behind it."""
    from gateway.audit.buffered import BufferedAuditLog

    buffered = BufferedAuditLog(audit_log)
    for n, principal in enumerate(["before", "a\x00b", "after"]):
        assert buffered.offer(_record(n, principal=principal))
    assert buffered.flush(timeout_s=10.0)
    buffered.close()
    names = [r.principal for r in audit_log.query(AuditFilter()).records]
    assert names[0] == "after" and names[2] == "before"
    assert names[1] in {"a\x00b", "a\ufffdb"}  # SQLite keeps it; PostgreSQL stores U+FFFD


def test_model_audit_writes_admin_actions_into_it(audit_log: AuditLog) -> None:
    audit = ModelAudit(audit_log)
    audit.record(actor="ops", trigger="reindex", outcome="forced", changes={}, digest="d1")
    (change,) = audit.recent()
    assert (change.actor, change.trigger, change.outcome, change.digest) == (
        "ops",
        "reindex",
        "forced",
        "d1",
    )
    (row,) = audit_log.query(AuditFilter(kind="admin")).records
    assert (row.action, row.decision) == ("reindex.forced", "answered")


def test_settings_choose_postgres_and_a_dead_server_is_a_clear_error(
    postgres_dsn: str, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path, audit={"backend": "postgres", "dsn": postgres_dsn})
    log = build_audit_log(settings)
    assert isinstance(log, PostgresAuditLog)
    log.append(_record(1))
    assert log.query(AuditFilter()).records
    dead = PostgresAuditLog(f"postgresql://holdfast@127.0.0.1:{PG_PORT + 1}/postgres")
    with pytest.raises(AuditUnavailableError):
        dead.append(_record(2))


def test_postgres_refuses_updates_deletes_and_truncation(postgres_dsn: str) -> None:
    import psycopg

    log = PostgresAuditLog(postgres_dsn)
    log.append(_record(1))
    for statement in (
        "UPDATE audit_log SET principal = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with psycopg.connect(postgres_dsn) as conn, pytest.raises(psycopg.Error, match="append"):
            conn.execute(statement)
