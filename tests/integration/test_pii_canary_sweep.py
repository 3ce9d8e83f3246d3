"""PII canary sweep (issue 16 item 8): canaries of every redacted entity type go in through
document bodies, section headings, file names, upload metadata and questions; afterwards every
sink is read back and must hold none of them.

Sinks: every property (and uuid) of every Weaviate object, read through weaviate-client; the
Weaviate data files; the gateway, Weaviate and Ollama logs; the audit store; the jobs store; the
other state databases; the uploads directory; the problem+json bodies the gateway sent; /metrics;
every OpenTelemetry span (name, attributes, events, status) of the same flows run once more
through a gateway in this process with an in-memory span exporter.
One test per (sink, way in), so a find names both. A known find is marked xfail(strict=True)
with its reason: when it is fixed the test says so, and the mark goes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import weaviate
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from weaviate.classes.init import Auth

from gateway.cli.ingest import within_rate_limit
from gateway.main import create_default_app as create_app
from gateway.security.keys import KeyStore
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.obs_gateway import gateway_settings
from tests.integration.pii_canaries import ORIGINS, Pii, canaries, found_in, of

pytestmark = pytest.mark.integration

SINKS = (
    "spans",
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


def _ask(client: httpx.Client, values: list[Pii], problems: list[str]) -> None:
    """Every read surface, with canaries in the question, on ``client`` (base URL and key set)."""
    q = of(values, "question")
    question = (
        f"Which card does {q['PERSON']} use? Mail {q['EMAIL_ADDRESS']}, phone {q['PHONE_NUMBER']}, "
        f"SSN {q['US_SSN']}, card {q['CREDIT_CARD']}, IBAN {q['IBAN_CODE']}, host "
        f"{q['IP_ADDRESS']}, key {q['SECRET']}; also the Larkmoor depot account review."
    )
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
    for path, body in calls:
        response = client.post(path, json=body)
        for _ in range(20):
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
            response = client.post(path, json=body)
        if response.status_code >= 400:
            problems.append(response.text)
    problems.append(within_rate_limit(lambda: client.get("/v1/jobs/" + q["SECRET"])).text)
    problems.append(within_rate_limit(lambda: client.delete("/v1/documents/" + q["US_SSN"])).text)


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
    problems: list[str] = []
    with httpx.Client(
        base_url=live_stack.url, headers={"Authorization": f"Bearer {key}"}, timeout=300.0
    ) as client:
        for origin, (path, name) in docs.items():
            job = _ingest_with(client, path, name, _extra(origin, values))
            assert job["files"][0]["status"] == "indexed", job
        _ask(client, values, problems)
    spans = _spans_of_the_same_flows(live_stack, tmp_path_factory, values, docs, problems)
    time.sleep(1.0)  # log handlers flush
    s = live_stack.settings
    state = s.state_dir
    sinks = {
        "spans": spans,
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
    # positive controls: a sink read from the wrong place would hold nothing, and pass
    for name in ("weaviate", "weaviate-files", "logs", "audit", "jobs", "state", "metrics"):
        assert sinks[name].strip(), f"the {name} sink captured nothing: it would prove nothing"
    for name in ("weaviate", "weaviate-files"):
        assert "larkmoor" in sinks[name].lower(), f"the {name} sink holds none of the documents"
    yield values, sinks


def _extra(origin: str, values: list[Pii]) -> dict[str, str]:
    """The upload's extra form fields: canaries in the metadata for the metadata way in."""
    if origin != "metadata":
        return {}
    m = of(values, "metadata")
    return {
        "metadata": json.dumps(
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
    }


def _ingest_with(client: httpx.Client, path: Path, name: str, extra: dict[str, str]) -> Any:
    """Upload and wait for the job, waiting out the key's rate limit as a client should: the
    polls of one job can spend the key's burst before the next upload."""
    response = within_rate_limit(
        lambda: client.post(
            "/v1/documents",
            files=[("files", (name, path.read_bytes(), "application/octet-stream"))],
            data={"access_groups": "pii", **extra},
        )
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 600.0
    while time.monotonic() < deadline:
        response = client.get(f"/v1/jobs/{job_id}")
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        body = response.json()
        if body["status"] in {"succeeded", "partial", "failed"}:
            return body
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish")


def _spans_of_the_same_flows(
    live_stack: LiveStack,
    tmp_path_factory: pytest.TempPathFactory,
    values: list[Pii],
    docs: dict[str, tuple[Path, str]],
    problems: list[str],
) -> str:
    """The uploads and questions once more, through a gateway in this process on the live
    services whose spans go to memory; every span as JSON."""
    settings = gateway_settings(
        live_stack.settings, tmp_path_factory.mktemp("pii-traced"), PORT_BASE + 23
    )
    _, key = KeyStore(settings.keys_db).create(
        "pii-traced", groups=["pii"], roles=["ingest", "query"]
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(settings, tracer_provider=provider)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        for origin, (path, name) in docs.items():
            job = _ingest_with(client, path, name, _extra(origin, values))
            assert job["files"][0]["status"] in {"indexed", "unchanged"}, job
        _ask(client, values, problems)
    spans = [s for s in exporter.get_finished_spans() if not _the_test_clients_own(s)]
    assert any(s.name == "generate" for s in spans), "no query spans: the sweep would prove nothing"
    return "\n".join(span.to_json() for span in spans)


def _the_test_clients_own(span: ReadableSpan) -> bool:
    """A client span of this test's own request to the in-process gateway (httpx is traced
    process-wide): it holds the URL the test typed, not anything the gateway wrote."""
    attributes = span.attributes or {}
    url = str(attributes.get("http.url") or attributes.get("url.full") or "")
    return span.kind == SpanKind.CLIENT and url.startswith("http://testserver")


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
