"""Schema conformance of the TEI adapters (not an integration with TEI: no TEI server can run
here). A small real HTTP server checks each request the adapters send against the request
schemas of TEI's published OpenAPI document (huggingface/text-embeddings-inference,
docs/openapi.json, version 1.7.1: ``EmbedRequest``, ``RerankRequest``) and answers with bodies
shaped as its ``EmbedResponse`` and ``RerankResponse``, which the adapters must read back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import jsonschema
import pytest

from services.errors import EmbedderUnavailableError, RerankerUnavailableError
from services.tei_embedder import TEIEmbedder
from services.tei_reranker import TEIReranker

pytestmark = pytest.mark.unit

# Transcribed from TEI's docs/openapi.json (components.schemas), only the parts these endpoints use.
_INPUT_TYPE = {
    "oneOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "integer", "minimum": 0}},
    ]
}
_TRUNCATION_DIRECTION = {"type": "string", "enum": ["Left", "Right", "left", "right"]}
EMBED_REQUEST = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "inputs": {"oneOf": [_INPUT_TYPE, {"type": "array", "items": _INPUT_TYPE}]},
        "normalize": {"type": "boolean"},
        "prompt_name": {"type": ["string", "null"]},
        "truncate": {"type": ["boolean", "null"]},
        "truncation_direction": _TRUNCATION_DIRECTION,
    },
}
EMBED_RESPONSE = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}
RERANK_REQUEST = {
    "type": "object",
    "required": ["query", "texts"],
    "properties": {
        "query": {"type": "string"},
        "raw_scores": {"type": "boolean"},
        "return_text": {"type": "boolean"},
        "texts": {"type": "array", "items": {"type": "string"}},
        "truncate": {"type": ["boolean", "null"]},
        "truncation_direction": _TRUNCATION_DIRECTION,
    },
}
RANK = {
    "type": "object",
    "required": ["index", "score"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "score": {"type": "number"},
        "text": {"type": ["string", "null"]},
    },
}
RERANK_RESPONSE = {"type": "array", "items": RANK}


class _SchemaServer(BaseHTTPRequestHandler):
    """Validates requests against the schemas; answers per the response schemas."""

    seen: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    fail_with: ClassVar[int | None] = None

    def log_message(self, *args: object) -> None:
        return

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200 if self.path == "/health" else 404, {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append((self.path, body))
        if self.fail_with:
            self._send(self.fail_with, {"error": "Inference failed", "error_type": "Backend"})
            return
        if self.path == "/embed":
            schema, props = EMBED_REQUEST, EMBED_REQUEST["properties"]
            jsonschema.validate(body, schema)
            assert set(body) <= set(props)  # type: ignore[arg-type]
            texts = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
            # a deterministic 4-d "embedding": length, vowels, spaces, 1
            out = [[len(t), sum(c in "aeiou" for c in t), t.count(" "), 1.0] for t in texts]
            jsonschema.validate(out, EMBED_RESPONSE)
            self._send(200, out)
        elif self.path == "/rerank":
            jsonschema.validate(body, RERANK_REQUEST)
            assert set(body) <= set(RERANK_REQUEST["properties"])  # type: ignore[arg-type]
            words = set(body["query"].split())
            ranks = [
                {"index": i, "score": len(words & set(t.split())) / (1 + len(words))}
                for i, t in enumerate(body["texts"])
            ]
            ranks.sort(key=lambda r: -r["score"])
            jsonschema.validate(ranks, RERANK_RESPONSE)
            self._send(200, ranks)
        else:
            self._send(404, {"error": "not found", "error_type": "Validation"})


@pytest.fixture
def tei_url() -> Iterator[str]:
    _SchemaServer.seen = []
    _SchemaServer.fail_with = None
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SchemaServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tei_embedder_sends_embed_requests_that_match_the_published_schema(tei_url: str) -> None:
    embedder = TEIEmbedder(tei_url, "bge-small", timeout_s=5, max_retries=0, batch_size=2)
    vectors = embedder.embed_documents(["annual leave", "a b c", "xyz"])
    assert vectors == [[12.0, 6.0, 1.0, 1.0], [5.0, 1.0, 2.0, 1.0], [3.0, 0.0, 0.0, 1.0]]
    assert [path for path, _ in _SchemaServer.seen] == ["/embed", "/embed"]
    assert _SchemaServer.seen[0][1] == {
        "inputs": ["annual leave", "a b c"],
        "normalize": True,
        "truncate": True,
    }
    assert embedder.dimensions == 4
    assert embedder.health().ok
    embedder.close()


def test_tei_reranker_sends_rerank_requests_that_match_the_published_schema(
    tei_url: str,
) -> None:
    reranker = TEIReranker(tei_url, "bge-reranker", timeout_s=5, max_retries=0)
    texts = ["the canteen menu", "annual leave days per year", "leave request form"]
    scores = reranker.rerank("annual leave days", texts)
    assert [s.index for s in scores] == [1, 2, 0]
    assert scores[0].score > scores[1].score > scores[2].score
    path, body = _SchemaServer.seen[-1]
    assert path == "/rerank" and body["texts"] == texts and body["return_text"] is False
    assert reranker.rerank("q", []) == []
    reranker.close()


def test_tei_error_statuses_become_holdfast_errors_naming_the_model(tei_url: str) -> None:
    _SchemaServer.fail_with = 424
    with pytest.raises(EmbedderUnavailableError, match=r"tei embeddings \(bge-small\).*424"):
        TEIEmbedder(tei_url, "bge-small", timeout_s=5, max_retries=0).embed_query("x")
    with pytest.raises(RerankerUnavailableError, match=r"tei rerank \(bge-reranker\).*424"):
        TEIReranker(tei_url, "bge-reranker", timeout_s=5, max_retries=0).rerank("q", ["t"])


def test_retries_are_bounded_by_max_retries(tei_url: str) -> None:
    _SchemaServer.fail_with = 503
    with pytest.raises(EmbedderUnavailableError, match="503"):
        TEIEmbedder(tei_url, "m", timeout_s=5, max_retries=2).embed_query("x")
    assert len(_SchemaServer.seen) == 3
