"""Audit log: filters and paging, append-only storage, the HTTP middleware's records."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from gateway.api.audit_middleware import AuditContext, AuditMiddleware, audit_context, track_events
from gateway.api.problems import install_problem_handlers
from gateway.audit.records import (
    AuditFilter,
    AuditRecord,
    build_filter,
    decision_for_status,
    decode_cursor,
    encode_cursor,
)
from gateway.audit.store import SqliteAuditLog, where_clause
from gateway.models.audit import ModelAudit
from gateway.observability.request_context import RequestIdMiddleware
from gateway.security.keys import Principal
from services.errors import AccessDeniedError, InvalidRequestError

pytestmark = pytest.mark.unit


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


def test_cursor_round_trips_and_foreign_cursors_are_refused() -> None:
    assert decode_cursor(encode_cursor(42)) == 42
    for bad in ("42", "!!!", encode_cursor(42)[:-1] + "*", ""):
        with pytest.raises(InvalidRequestError):
            decode_cursor(bad)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"decision": "maybe"},
        {"kind": "other"},
        {"since": "yesterday"},
        {"since": "2026-02-01", "until": "2026-01-01"},
        {"cursor": "nope"},
    ],
)
def test_bad_reader_parameters_are_invalid_requests(params: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        build_filter(**params)  # type: ignore[arg-type]


def test_naive_times_are_utc_and_filters_carry_through() -> None:
    flt = build_filter(principal="alice", decision="denied", since="2026-01-01T10:00")
    assert flt.since == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert (flt.principal, flt.decision, flt.limit) == ("alice", "denied", 50)


@pytest.mark.parametrize(
    "params",
    [{"since": "0001-01-01T00:00:00+05:00"}, {"until": "9999-12-31T23:59:59-05:00"}],
)
def test_times_utc_cannot_hold_are_invalid_requests_not_overflows(
    params: dict[str, str],
) -> None:
    with pytest.raises(InvalidRequestError, match="outside the years 1 to 9999"):
        build_filter(**params)


def test_a_year_before_1000_still_compares_as_an_earlier_time(tmp_path: Path) -> None:
    """SQLite compares the strings: an unpadded year 999 would sort after 2026."""
    log = SqliteAuditLog(tmp_path / "audit.db")
    log.append(_record(1))
    assert [r.id for r in log.query(build_filter(since="0999-01-01")).records] == [1]
    assert log.query(build_filter(until="0999-01-01")).records == []


def test_where_clause_uses_placeholders_never_values() -> None:
    flt = AuditFilter(principal="x'; DROP TABLE audit_log; --", before_id=7)
    sql, params = where_clause(flt, "%s")
    assert "DROP" not in sql and sql.count("%s") == 2
    assert params == ["x'; DROP TABLE audit_log; --", 7]


@pytest.mark.parametrize(
    ("status", "decision"),
    [(200, "answered"), (401, "denied"), (403, "denied"), (429, "denied"), (400, "error")],
)
def test_decision_follows_the_status(status: int, decision: str) -> None:
    assert decision_for_status(status) == decision


def test_sqlite_pages_newest_first_and_filters(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "audit.db")
    written = [log.append(_record(n)) for n in range(1, 8)]
    assert [r.id for r in written] == list(range(1, 8))
    first = log.query(AuditFilter(limit=3))
    assert [r.id for r in first.records] == [7, 6, 5] and first.next_cursor
    second = log.query(build_filter(limit=3, cursor=first.next_cursor))
    assert [r.id for r in second.records] == [4, 3, 2]
    third = log.query(build_filter(limit=3, cursor=second.next_cursor))
    assert [r.id for r in third.records] == [1] and third.next_cursor is None
    only = log.query(build_filter(principal="p1", decision="answered"))
    assert {r.id for r in only.records} == {1, 7}
    window = log.query(
        build_filter(since="2026-01-01T00:03:00Z", until="2026-01-01T00:05:00+00:00")
    )
    assert [r.id for r in window.records] == [5, 4, 3]


def test_sqlite_round_trips_every_field(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "audit.db")
    rec = _record(
        1,
        groups=("finance", "handbook"),
        doc_ids=("d1",),
        chunk_ids=("c1", "c2"),
        alias="chat-default",
        model="ollama/x",
        redactions={"PERSON": 2},
        reason="low_confidence",
        status=200,
        request_id="rid",
    )
    stored = log.append(rec)
    again = SqliteAuditLog(tmp_path / "audit.db").query(AuditFilter()).records[0]
    assert again == stored


def test_sqlite_refuses_updates_and_deletes(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "audit.db")
    log.append(_record(1))
    with sqlite3.connect(tmp_path / "audit.db") as db:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("UPDATE audit_log SET principal = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("DELETE FROM audit_log")


def test_model_audit_keeps_its_api_and_lands_in_the_audit_log(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "audit.db")
    audit = ModelAudit(log)
    audit.record(actor="ops", trigger="api", outcome="swapped", changes={"chat": "changed"})
    audit.record(actor="system", trigger="watch", outcome="rejected", changes={}, detail="bad")
    audit.record(actor="ops", trigger="reindex", outcome="forced", changes={}, digest="abc")
    recent = audit.recent()
    assert [(c.trigger, c.outcome) for c in recent] == [
        ("reindex", "forced"),
        ("watch", "rejected"),
        ("api", "swapped"),
    ]
    assert recent[2].changes == {"chat": "changed"} and recent[1].detail == "bad"
    rows = log.query(AuditFilter(kind="admin")).records
    assert [(r.action, r.decision) for r in rows] == [
        ("reindex.forced", "answered"),
        ("model.rejected", "refused"),
        ("model.swapped", "answered"),
    ]
    # the old constructor (a file in the state directory) writes to the same audit database
    ModelAudit(tmp_path / "model-changes.db").record(
        actor="cli", trigger="reindex", outcome="forced", changes={}
    )
    assert log.query(AuditFilter()).records[0].principal == "cli"


def test_stream_events_set_the_decision_and_ids() -> None:
    ctx = AuditContext()
    events = [
        ("retrieval", {"retrieval_status": "ok", "citations": [{"doc_id": "d", "chunk_id": "c"}]}),
        ("token", {"text": "secret answer"}),
        ("done", {"refused": False, "model": "m", "redactions": {"PERSON": 1}}),
    ]
    assert list(track_events(events, ctx)) == events
    assert (ctx.decision, ctx.doc_ids, ctx.chunk_ids, ctx.model) == ("answered", ["d"], ["c"], "m")
    refused = AuditContext()
    list(track_events([("retrieval", {"retrieval_status": "no_results"}), ("done", {})], refused))
    assert (refused.decision, refused.reason) == ("refused", "no_results")
    unsupported = AuditContext()
    ok = ("retrieval", {"retrieval_status": "ok"})
    list(
        track_events(
            [ok, ("done", {"refused": True, "refusal_reason": "unsupported"})], unsupported
        )
    )
    assert (unsupported.decision, unsupported.reason) == ("refused", "unsupported")
    declined = AuditContext()
    list(track_events([ok, ("done", {"refused": True})], declined))
    assert declined.reason == "model_declined"


def _app(log: SqliteAuditLog) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(AuditMiddleware, get_log=lambda: log)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/items/{item_id}")
    def get_item(item_id: str, request: Request) -> dict[str, str]:
        request.state.principal = Principal("alice", ("g1",), frozenset({"query"}))
        audit_context(request.state).add_hits([("doc-1", "chunk-1")])
        return {"ok": item_id}

    @app.get("/forbidden")
    def forbidden(request: Request) -> None:
        request.state.principal = Principal("bob", ("g2",), frozenset())
        raise AccessDeniedError("no")

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


def test_middleware_records_route_templates_principals_and_decisions(tmp_path: Path) -> None:
    log = SqliteAuditLog(tmp_path / "audit.db")
    client = TestClient(_app(log))
    ok = client.get("/items/jane.doe@example.com", headers={"X-Request-ID": "req-1"})
    assert ok.headers["x-request-id"] == "req-1"
    client.get("/forbidden")
    client.get("/healthz")
    client.get("/nowhere/jane.doe@example.com")
    records = log.query(AuditFilter()).records
    assert [(r.endpoint, r.principal, r.decision, r.status) for r in records] == [
        ("GET (no route)", "anonymous", "error", 404),
        ("GET /forbidden", "bob", "denied", 403),
        ("GET /items/{item_id}", "alice", "answered", 200),
    ]
    assert records[2].request_id == "req-1" and records[2].groups == ("g1",)
    assert records[2].doc_ids == ("doc-1",) and records[2].chunk_ids == ("chunk-1",)
    assert "jane.doe" not in repr(records)
