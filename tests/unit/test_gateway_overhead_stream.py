"""The overhead benchmark's streamed-answer marks: read over the long-lived client it is given,
and the gateway's own share is what its ``timings_ms`` leave of the time to first token."""

from __future__ import annotations

import json

import httpx
import pytest

from benchmarks.gateway_overhead import RETRIEVAL_STAGES, gateway_stream

pytestmark = pytest.mark.unit

TIMINGS = {
    "redact_in": 1.0,
    "retrieve": 20.0,
    "assemble": 9.0,
    "model_first_piece": 400.0,
    "hold_back": 50.0,
}


def _sse(*events: tuple[str, dict[str, object]]) -> bytes:
    return b"".join(f"event: {e}\ndata: {json.dumps(d)}\n\n".encode() for e, d in events)


def test_the_marks_come_over_the_given_client_and_the_share_is_what_timings_leave() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = _sse(
            ("retrieval", {"retrieval_status": "ok"}),
            ("token", {"text": "Use sorted()."}),
            ("done", {"timings_ms": TIMINGS}),
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with httpx.Client(base_url="http://gateway.test", transport=httpx.MockTransport(answer)) as c:
        row = gateway_stream(c, "hf_key", "How do I sort?")
        gateway_stream(c, "hf_key", "And reverse it?")

    assert [r.url.path for r in seen] == ["/v1/query", "/v1/query"]
    assert seen[0].headers["authorization"] == "Bearer hf_key"
    assert json.loads(seen[0].content) == {"question": "How do I sort?", "stream": True}
    assert 0 < row["retrieval_event_ms"] <= row["ttft_ms"]
    stages = sum(TIMINGS[k] for k in RETRIEVAL_STAGES if k in TIMINGS)
    assert row["gw_retrieval_ms"] == stages == 29.0
    expected = row["ttft_ms"] - stages - TIMINGS["model_first_piece"] - TIMINGS["hold_back"]
    assert row["gateway_own_ms"] == pytest.approx(expected)


def test_a_refusal_has_no_model_marks() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        body = _sse(
            ("retrieval", {"retrieval_status": "low_confidence"}),
            ("token", {"text": "I cannot answer that from the documents."}),
            ("done", {"timings_ms": {"retrieve": 20.0}}),
        )
        return httpx.Response(200, content=body)

    with httpx.Client(base_url="http://gateway.test", transport=httpx.MockTransport(refuse)) as c:
        row = gateway_stream(c, "hf_key", "What is the airspeed of a swallow?")

    assert set(row) == {"retrieval_event_ms", "ttft_ms"}
