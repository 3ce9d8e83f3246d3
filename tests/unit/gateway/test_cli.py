"""``holdfast``: the app assembled from its group modules; ``query`` against a small SSE server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.main import SAMPLE_CORPUS, app
from gateway.offline import OFFLINE_ENV

pytestmark = pytest.mark.unit

COMMANDS = ["up", "down", "status", "serve", "ingest", "query", "demo", "eval", "audit", "reindex"]
GROUPS = {"keys": ["create", "list", "revoke"], "config": ["check"], "models": [], "bundle": []}
CITATION = {
    "index": 1,
    "source": "/docs/leave-policy.md",
    "title": "Leave policy",
    "section": "Annual leave",
    "similarity": 0.81,
    "quote": "Employees get 25 days of annual leave.",
}
# sse-starlette's framing: CRLF line ends, comment pings between events
STREAM = (
    ": ping\r\n\r\n"
    f"event: retrieval\r\ndata: {json.dumps({'retrieval_status': 'ok', 'confidence': 0.8, 'citations': [CITATION]})}\r\n\r\n"  # noqa: E501
    'event: token\r\ndata: {"text": "Twenty-five "}\r\n\r\n'
    ": ping\r\n\r\n"
    'event: token\r\ndata: {"text": "days [1]."}\r\n\r\n'
    'event: done\r\ndata: {"cited": [1], "refused": false}\r\n\r\n'
)
PROBLEM = {"title": "Access denied", "detail": "key lacks the query role", "status": 403}


class Gateway(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        allowed = self.headers["Authorization"] == "Bearer good"
        if not allowed:
            payload, status, kind = json.dumps(PROBLEM).encode(), 403, "application/problem+json"
        elif body.get("stream"):
            payload, status, kind = STREAM.encode(), 200, "text/event-stream; charset=utf-8"
        else:
            answer: dict[str, object] = {"answer": "Twenty-five days [1].", "model": "m"}
            answer |= {"retrieval_status": "ok", "confidence": 0.8}
            answer["citations"] = [CITATION | {"cited": True}]
            payload, status, kind = json.dumps(answer).encode(), 200, "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gateway_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("HOLDFAST_HOME", str(tmp_path))
    for name, value in OFFLINE_ENV.items():  # the CLI sets these; put them back afterwards
        monkeypatch.setenv(name, value)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_every_command_and_group_answers_help() -> None:
    runner = CliRunner()
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0, top.output
    for name in [*COMMANDS, *GROUPS]:
        assert name in top.output
        assert runner.invoke(app, [name, "--help"]).exit_code == 0, name
    for group, commands in GROUPS.items():
        for command in commands:
            assert runner.invoke(app, [group, command, "--help"]).exit_code == 0


def test_the_sample_corpus_is_found_where_the_package_ships_it() -> None:
    assert {p.name for p in SAMPLE_CORPUS.glob("*.md")} >= {"leave-policy.md", "expenses.md"}


def test_a_streamed_answer_prints_tokens_then_the_cited_sources(gateway_url: str) -> None:
    args = ["query", "How much leave?", "--stream", "--key", "good", "--url", gateway_url]
    result = CliRunner().invoke(app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "retrieval ok, confidence 0.80" in result.output
    assert "Twenty-five days [1]." in result.output
    assert "leave-policy.md" in result.output and "yes" in result.output


def test_a_refused_stream_exits_1_with_the_problem_title(gateway_url: str) -> None:
    args = ["query", "How much leave?", "--stream", "--key", "bad", "--url", gateway_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "Access denied: key lacks the query role (HTTP 403)" in result.output


def test_a_plain_answer_prints_the_answer_and_citations(gateway_url: str) -> None:
    result = CliRunner().invoke(
        app, ["query", "How much leave?", "--key", "good", "--url", gateway_url], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "Twenty-five days [1]." in result.output and "leave-policy.md" in result.output
    denied = CliRunner().invoke(app, ["query", "q", "--key", "bad", "--url", gateway_url])
    assert denied.exit_code == 1 and "(HTTP 403)" in denied.output
