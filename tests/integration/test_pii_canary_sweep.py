"""PII canary sweep (issue 16 item 8): canaries of every redacted entity type go in through
document bodies, section headings, file names, upload metadata and questions; afterwards every
sink is read back and must hold none of them.

Sinks: every property (and uuid) of every Weaviate object, read through weaviate-client; the
Weaviate data files; the gateway, Weaviate and Ollama logs; the audit store; the jobs store; the
other state databases; the uploads directory; the problem+json bodies the gateway sent; /metrics.
One test per (sink, way in), so a find names both. A known find is marked xfail(strict=True)
with its reason: when it is fixed the test says so, and the mark goes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import weaviate
from weaviate.classes.init import Auth

from gateway.security.keys import KeyStore
from tests.integration.conftest import LiveStack
from tests.integration.ingest_api import ingest, wait_for_job
from tests.integration.pii_canaries import ORIGINS, Pii, canaries, found_in, of

pytestmark = pytest.mark.integration

SINKS = (
    "weaviate",
    "weaviate-files",
    "logs",
    "audit",
    "jobs",
    "state",
    "uploads",
    "problems",
    "metrics",
)
# (sink, way in) -> why it holds canaries today. Filled from the sweep's own finds; see README.
KNOWN: dict[tuple[str, str], str] = {}


def _documents(values: list[Pii], folder: Path) -> dict[str, tuple[Path, str]]:
    body, heading = of(values, "body"), of(values, "heading")
    review = folder / "review.md"
    review.write_text(
        f"# Account review for {heading['PERSON']}\n\n"
        f"## Contact {heading['EMAIL_ADDRESS']} or {heading['PHONE_NUMBER']}\n\n"
        "The quarterly account review of the Larkmoor depot found two open items.\n\n"
        f"## Identifiers {heading['US_SSN']}, card {heading['CREDIT_CARD']}\n\n"
        f"### Bank {heading['IBAN_CODE']} host {heading['IP_ADDRESS']} key {heading['SECRET']}\n\n"
        f"The account holder is {body['PERSON']}; write to {body['EMAIL_ADDRESS']} or call "
        f"{body['PHONE_NUMBER']}. Her social security number is {body['US_SSN']} and the "
        f"corporate card on file is {body['CREDIT_CARD']}. Refunds go to IBAN "
        f"{body['IBAN_CODE']}. The depot VPN gateway is {body['IP_ADDRESS']} and the backup job "
        f"uses the AWS access key id {body['SECRET']}.\n\n"
        "| holder | phone | card |\n| --- | --- | --- |\n"
        f"| {body['PERSON']} | {body['PHONE_NUMBER']} | {body['CREDIT_CARD']} |\n"
    )
    name = of(values, "filename")
    plain = folder / "minutes.md"
    plain.write_text(
        "# Larkmoor depot parking minutes\n\nThe parking rota of the Larkmoor depot changes "
        "in spring; bays 4 to 9 are reserved for delivery vans.\n"
    )
    risky_name = (
        f"pii/{name['PERSON']} {name['EMAIL_ADDRESS']} {name['PHONE_NUMBER']} {name['US_SSN']} "
        f"{name['CREDIT_CARD']} {name['IBAN_CODE']} {name['IP_ADDRESS']} {name['SECRET']}.md"
    )
    meta = folder / "meta.md"
    meta.write_text(
        "# Larkmoor depot forklift log\n\nForklift 3 of the Larkmoor depot was serviced; "
        "the hydraulic hose was replaced.\n"
    )
    return {
        "body": (review, "pii/account-review.md"),
        "filename": (plain, risky_name),
        "metadata": (meta, "pii/forklift-log.md"),
    }


def _ask(url: str, key: str, values: list[Pii], problems: list[str]) -> None:
    q = of(values, "question")
    question = (
        f"Which card does {q['PERSON']} use? Mail {q['EMAIL_ADDRESS']}, phone {q['PHONE_NUMBER']}, "
        f"SSN {q['US_SSN']}, card {q['CREDIT_CARD']}, IBAN {q['IBAN_CODE']}, host "
        f"{q['IP_ADDRESS']}, key {q['SECRET']}; also the Larkmoor depot account review."
    )
    auth = {"Authorization": f"Bearer {key}"}
    chat = {"messages": [{"role": "user", "content": question}], "max_tokens": 32}
    calls: list[tuple[str, dict[str, object]]] = [
        ("/v1/search", {"query": question}),
        ("/v1/query", {"question": question}),
        ("/v1/query", {"question": question, "stream": True}),
        ("/v1/chat/completions", {"model": "chat-default", **chat}),
        ("/v1/chat/completions", {"model": "chat-default", "stream": True, **chat}),
        # failing on purpose: a problem body must not echo the caller's text
        ("/v1/chat/completions", {"model": q["EMAIL_ADDRESS"], **chat}),
        ("/v1/search", {"query": question, "filters": [{"field": q["US_SSN"], "value": "x"}]}),
        ("/v1/search", {"query": question, "filters": [{"field": "page", "value": q["PERSON"]}]}),
        ("/v1/query", {"question": question + " " + "x" * 2100}),
        ("/v1/search", {"query": question, "top_k": 10_000}),
        ("/v1/search", {"query": question, "alpha": q["CREDIT_CARD"]}),
    ]
    with httpx.Client(base_url=url, headers=auth, timeout=300.0) as client:
        for path, body in calls:
            response = client.post(path, json=body)
            for _ in range(20):
                if response.status_code != 429:
                    break
                time.sleep(float(response.headers.get("Retry-After", "1")))
                response = client.post(path, json=body)
            if response.status_code >= 400:
                problems.append(response.text)
        problems.append(client.get("/v1/jobs/" + q["SECRET"]).text)
        problems.append(client.delete("/v1/documents/" + q["US_SSN"]).text)


def _weaviate_objects(stack: LiveStack) -> str:
    s = stack.settings
    key = (s.secrets_dir / "weaviate-api-key").read_text().strip()
    lines: list[str] = []
    with weaviate.connect_to_local(
        host=s.weaviate.host,
        port=s.weaviate.http_port,
        grpc_port=s.weaviate.grpc_port,
        auth_credentials=Auth.api_key(key),
        skip_init_checks=True,
    ) as client:
        for name in client.collections.list_all(simple=True):
            for obj in client.collections.get(name).iterator():
                lines.append(f"{name} {obj.uuid} {json.dumps(obj.properties, default=str)}")
    assert lines, "no Weaviate objects read: the sweep would prove nothing"
    return "\n".join(lines)


def _files(root: Path) -> str:
    parts = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        parts.append(str(path.relative_to(root)))  # names count too
        parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def _database(path: Path) -> str:
    """Every row (iterdump) and the raw bytes of the file and its WAL (freed pages too)."""
    text: list[str] = []
    for file in sorted(path.parent.glob(path.name + "*")):
        text.append(file.read_bytes().decode("utf-8", "replace"))
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        text += list(connection.iterdump())
    finally:
        connection.close()
    return "\n".join(text)


@pytest.fixture(scope="module")
def swept(
    live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Pii], dict[str, str]]]:
    values = canaries()
    _, key = KeyStore(live_stack.settings.keys_db).create(
        "pii-sweeper", groups=["pii"], roles=["ingest", "query"]
    )
    docs = _documents(values, tmp_path_factory.mktemp("pii"))
    for origin, (path, name) in docs.items():
        extra: dict[str, object] = {}
        if origin == "metadata":
            m = of(values, "metadata")
            extra["metadata"] = json.dumps(
                {
                    "title": f"Forklift log kept by {m['PERSON']}",
                    "owner": m["PERSON"],
                    "email": m["EMAIL_ADDRESS"],
                    "phone": m["PHONE_NUMBER"],
                    "ssn": m["US_SSN"],
                    "card": m["CREDIT_CARD"],
                    "iban": m["IBAN_CODE"],
                    "host": m["IP_ADDRESS"],
                    "aws_access_key_id": m["SECRET"],
                }
            )
        job = _ingest_with(live_stack.url, key, path, name, extra)
        assert job["files"][0]["status"] == "indexed", job
    problems: list[str] = []
    _ask(live_stack.url, key, values, problems)
    time.sleep(1.0)  # log handlers flush
    s = live_stack.settings
    state = s.state_dir
    sinks = {
        "weaviate": _weaviate_objects(live_stack),
        "weaviate-files": _files(s.data_dir / "weaviate"),
        "logs": _files(s.logs_dir),
        "audit": _database(s.audit_db),
        "jobs": _database(state / "jobs.db"),
        "state": "\n".join(
            _database(p)
            for p in sorted(state.glob("*.db"))
            if p.name not in {"audit.db", "jobs.db"}
        ),
        "uploads": _files(state / "uploads") if (state / "uploads").exists() else "",
        "problems": "\n".join(problems),
        "metrics": httpx.get(f"{live_stack.url}/metrics", timeout=30.0).text,
    }
    yield values, sinks


def _ingest_with(url: str, key: str, path: Path, name: str, extra: dict[str, object]) -> dict:  # type: ignore[type-arg]
    if not extra:
        return ingest(url, key, [path], groups="pii", names=[name])
    with path.open("rb") as fh:
        response = httpx.post(
            f"{url}/v1/documents",
            files=[("files", (name, fh, "application/octet-stream"))],
            data={"access_groups": "pii", **{k: str(v) for k, v in extra.items()}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=300.0,
        )
    assert response.status_code == 202, response.text
    return wait_for_job(url, key, response.json()["job_id"])


def _cases() -> list[object]:
    cases: list[object] = []
    for sink in SINKS:
        for origin in ORIGINS:
            reason = KNOWN.get((sink, origin))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(sink, origin, marks=marks, id=f"{sink}-{origin}"))
    return cases


@pytest.mark.parametrize(("sink", "origin"), _cases())
def test_no_pii_canary_reaches_the_sink(
    swept: tuple[list[Pii], dict[str, str]], sink: str, origin: str
) -> None:
    values, sinks = swept
    found = found_in(sinks[sink], values, origin)
    assert not found, f"{sink} holds PII canaries that came in through the {origin}: {found}"
