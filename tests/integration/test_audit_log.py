"""Every request and admin action lands in the audit log with the right decision, read back
through GET /admin/audit and `holdfast audit`; the log survives a gateway restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app as cli_app
from gateway.security.keys import KeyStore
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.ingest_api import ingest
from tests.integration.obs_gateway import OwnGateway, gateway_settings

pytestmark = pytest.mark.integration

ANSWERABLE = "How many days of annual leave do employees get?"
UNANSWERABLE = "What is the airspeed velocity of an unladen swallow on Jupiter?"


@pytest.fixture(scope="module")
def gateway(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("audit-home")
    settings = gateway_settings(live_stack.settings, home, PORT_BASE + 21)
    keys = KeyStore(settings.keys_db)
    _, admin = keys.create(
        "auditor-admin", groups=["handbook", "finance"], roles=["admin", "ingest", "query"]
    )
    _, reader = keys.create("reader", groups=["handbook"], roles=["query"])
    gw = OwnGateway(settings)
    gw.start()
    try:
        yield gw, admin, reader
    finally:
        gw.stop()


def _records(gw: OwnGateway, admin: str, **params: Any) -> list[dict[str, Any]]:
    response = gw.call("GET", "/admin/audit", admin, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def _by_request_id(records: list[dict[str, Any]], rid: str) -> dict[str, Any]:
    found = [r for r in records if r["request_id"] == rid]
    assert len(found) == 1, f"{len(found)} records for request {rid}"
    return found[0]


def test_requests_and_admin_actions_are_audited_and_survive_a_restart(
    gateway: Any, tmp_path: Path
) -> None:
    gw, admin, reader = gateway
    asked = {}

    def ask(name: str, key: str | None, body: dict[str, Any], status: int) -> None:
        rid = f"audit-{name}"
        response = gw.call("POST", "/v1/query", key, json=body, headers={"X-Request-ID": rid})
        assert response.status_code == status, response.text
        assert response.headers["x-request-id"] == rid
        asked[name] = response

    ask("answered", reader, {"question": ANSWERABLE}, 200)
    ask("refused", reader, {"question": UNANSWERABLE}, 200)
    ask("denied", None, {"question": ANSWERABLE}, 401)
    ask("error", reader, {"question": ANSWERABLE, "top_k": 999}, 400)
    assert gw.call("GET", "/admin/audit", reader).status_code == 403  # a reader is not an admin

    # admin actions: a document uploaded then deleted, a model reload, a rejected reload
    # a scratch document of its own: the shared stack's corpus must stay for the other modules
    scratch = tmp_path / "audit-scratch.md"
    scratch.write_text("# Audit scratch\n\nThe audit scratch page exists to be deleted.\n")
    job = ingest(gw.url, admin, [scratch], groups="finance")
    assert job["status"] == "succeeded", job
    doc_id = job["files"][0]["doc_id"]
    deleted = gw.call("DELETE", f"/v1/documents/{doc_id}", admin)
    assert deleted.status_code == 200, deleted.text
    assert gw.call("POST", "/admin/reload", admin).status_code == 200
    models = gw.settings.models_path
    good = models.read_text()
    models.write_text("model_list: [this is not valid\n")
    try:
        assert gw.call("POST", "/admin/reload", admin).status_code == 422
    finally:
        models.write_text(good)

    # key actions through the CLI, which writes to the same audit store
    runner = CliRunner()
    env = {"HOLDFAST_HOME": str(gw.settings.home), "HOLDFAST_CONFIG": str(tmp_path / "none.yaml")}
    created = runner.invoke(
        cli_app, ["keys", "create", "temp-bot", "--groups", "handbook"], env=env
    )
    assert created.exit_code == 0, created.output
    revoked = runner.invoke(cli_app, ["keys", "revoke", "temp-bot"], env=env)
    assert revoked.exit_code == 0, revoked.output

    def check(records: list[dict[str, Any]]) -> None:
        answered = _by_request_id(records, "audit-answered")
        body = asked["answered"].json()
        expected = "refused" if body["refused"] else "answered"
        assert answered["decision"] == expected
        assert answered["principal"] == "reader" and answered["groups"] == ["handbook"]
        assert answered["endpoint"] == "POST /v1/query" and answered["status"] == 200
        assert answered["doc_ids"] == list(dict.fromkeys(c["doc_id"] for c in body["citations"]))
        assert answered["chunk_ids"] == [c["chunk_id"] for c in body["citations"]]
        assert answered["model"] == (body["model"] or "") and answered["alias"]
        assert answered["redactions"] == body["redactions"]
        refused = _by_request_id(records, "audit-refused")
        assert (refused["decision"], refused["doc_ids"]) == ("refused", [])
        assert refused["reason"] in {"no_results", "low_confidence"}
        denied = _by_request_id(records, "audit-denied")
        assert (denied["decision"], denied["principal"], denied["status"]) == (
            "denied",
            "anonymous",
            401,
        )
        assert _by_request_id(records, "audit-error")["decision"] == "error"
        forbidden = [r for r in records if r["endpoint"] == "GET /admin/audit"]
        assert any(r["principal"] == "reader" and r["decision"] == "denied" for r in forbidden)
        actions = {(r["action"], r["decision"]) for r in records if r["kind"] == "admin"}
        assert ("document.deleted", "answered") in actions
        assert ("model.reload", "answered") in actions
        assert ("model.reload", "error") in actions
        assert ("model.rejected", "refused") in actions
        assert ("key.created", "answered") in actions
        assert ("key.revoked", "answered") in actions
        doc_delete = next(r for r in records if r["action"] == "document.deleted")
        assert doc_delete["doc_ids"] == [doc_id] and doc_delete["principal"] == "auditor-admin"

    before = _records(gw, admin)
    check(before)
    gw.stop()
    gw.start()
    after = _records(gw, admin)
    check(after)
    assert {r["id"] for r in before} <= {r["id"] for r in after}

    # filters and paging through the API and the CLI
    denied_only = _records(gw, admin, decision="denied")
    assert denied_only and all(r["decision"] == "denied" for r in denied_only)
    page = gw.call("GET", "/admin/audit", admin, params={"limit": 2})
    nxt = gw.call(
        "GET", "/admin/audit", admin, params={"limit": 2, "cursor": page.json()["next_cursor"]}
    )
    assert [r["id"] for r in page.json()["records"]] > [r["id"] for r in nxt.json()["records"]]
    bad = gw.call("GET", "/admin/audit", admin, params={"since": "last tuesday"})
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
    cli = runner.invoke(
        cli_app,
        ["audit", "--json", "--principal", "reader", "--url", gw.url, "--key", admin],
        env=env,
    )
    assert cli.exit_code == 0, cli.output
    printed = json.loads(cli.output)["records"]
    assert printed and {r["principal"] for r in printed} == {"reader"}
    local = runner.invoke(cli_app, ["audit", "--local", "--json", "--kind", "admin"], env=env)
    assert local.exit_code == 0, local.output
    local_actions = {r["action"] for r in json.loads(local.output)["records"]}
    assert {"key.created", "key.revoked", "document.deleted"} <= local_actions
    table = runner.invoke(cli_app, ["audit", "--local", "--limit", "3"], env=env)
    assert table.exit_code == 0 and "more: --cursor" in table.output
    refused = runner.invoke(cli_app, ["audit", "--local", "--decision", "maybe"], env=env)
    assert refused.exit_code == 1 and "decision must be one of" in refused.output
