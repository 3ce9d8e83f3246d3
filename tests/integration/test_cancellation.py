"""A client that disconnects mid-answer stops the model call and frees its slot (issue #19.4).

Real stack: the gateway, Ollama with the packaged chat model (two slots, OLLAMA_NUM_PARALLEL),
Weaviate, the embedder and Presidio. Ollama stops generating when the HTTP connection to it
closes, and its runner process then goes idle; so the proof watches the runner's CPU time
(psutil), besides the gateway's ``holdfast_query_cancellations`` counter and the audit record.

Bounds come from what each run measures, not from fixed small timeouts: the runner's CPU rate
while it generates (busy) against its rate after the cancellation, and the model's token rate,
from which the time an abandoned answer would have gone on is estimated.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from gateway.local import stack
from tests.integration.conftest import LiveStack
from tests.integration.ingest_api import audit_records

pytestmark = pytest.mark.integration

# Retrieves the leave policy (retrieval "ok", so the model is called) and asks for a long answer.
LONG_QUESTION = (
    "Write out the leave policy in full, every kind of leave with all of its rules, "
    "then write it out again in other words, and again, numbering each version."
)
SHORT_QUESTION = "How many days of annual leave do employees get?"
LONG_MAX_TOKENS = 1024  # the OpenAI route takes max_tokens; /v1/query uses the alias's own
CHARS_PER_TOKEN = 3  # English answer text has about 4; fewer makes the estimate shorter
STOP_GRACE_S = 15.0  # a few tokens' time on a busy CPU; an abandoned answer runs minutes
IDLE_SHARE = 0.2  # "stopped": the runner's CPU rate falls below this share of its busy rate
CHAT = "/v1/chat/completions"
QUERY = "/v1/query"


# --- the model server's side ------------------------------------------------------------------


def _runner_cpu_s(live_stack: LiveStack) -> float:
    """CPU seconds used so far by this stack's Ollama runners (the processes that generate)."""
    pid = stack.process_states(live_stack.settings)["ollama"].pid
    assert pid is not None, "the stack's Ollama is not running"
    total = 0.0
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "runner" in child.cmdline():
                times = child.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def runner_rate(live_stack: LiveStack, seconds: float) -> float:
    """The runners' CPU seconds per second over the next ``seconds``."""
    before = _runner_cpu_s(live_stack)
    time.sleep(seconds)
    return (_runner_cpu_s(live_stack) - before) / seconds


def wait_until(check: Callable[[], bool], timeout_s: float, every_s: float = 0.5) -> float:
    """Seconds until ``check()`` held; fails the test after ``timeout_s``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            pytest.fail(f"not within {timeout_s:.0f} s")
        time.sleep(every_s)
    return time.monotonic() - start


def wait_runner_quiet(live_stack: LiveStack, timeout_s: float = 240.0) -> None:
    """Start each scenario from an idle model server (nothing left of an earlier test)."""
    wait_until(lambda: runner_rate(live_stack, 1.0) < 0.05, timeout_s, every_s=0.0)


# --- the gateway's side -----------------------------------------------------------------------


def cancellations(live_stack: LiveStack, path: str) -> float:
    text = httpx.get(
        f"{live_stack.url}/metrics",
        headers={"Authorization": f"Bearer {live_stack.admin_key}"},
        timeout=30.0,
    ).text
    pattern = rf'^holdfast_query_cancellations_total{{endpoint="POST {re.escape(path)}"}} (\S+)$'
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def body_for(path: str, question: str, *, stream: bool, max_tokens: int) -> dict[str, object]:
    if path == QUERY:
        return {"question": question, "stream": stream}
    return {
        "model": "chat-default",
        "stream": stream,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": question}],
    }


def _token_text(path: str, line: str, last_event: str) -> str | None:
    """The text of one token, if this SSE ``data:`` line carries one."""
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if path == QUERY:
        return json.loads(payload).get("text") if last_event == "token" else None
    if payload == "[DONE]":
        return None
    choices = json.loads(payload).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or None


@dataclass
class Abandoned:
    first_token_s: float  # from sending the request to the first token
    chars_per_s: float  # of answer text, while the client still read
    busy_rate: float  # the runners' CPU rate while generating


@contextmanager
def streamed(live_stack: LiveStack, path: str, question: str) -> Iterator[Iterator[str]]:
    """A streamed answer's token texts; leaving the block closes the client's connection."""
    body = body_for(path, question, stream=True, max_tokens=LONG_MAX_TOKENS)
    headers = {"Authorization": f"Bearer {live_stack.handbook_key}"}
    with (
        httpx.Client(timeout=300.0) as client,
        client.stream("POST", f"{live_stack.url}{path}", json=body, headers=headers) as response,
    ):
        assert response.status_code == 200, response.read()

        def tokens() -> Iterator[str]:
            event = ""
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                text = _token_text(path, line, event)
                if text:
                    yield text

        yield tokens()


def stream_then_disconnect(live_stack: LiveStack, path: str) -> Abandoned:
    """Read a long streamed answer up to its second piece, then hang up."""
    start = time.monotonic()
    with streamed(live_stack, path, LONG_QUESTION) as pieces:
        next(pieces)
        first = time.monotonic()
        cpu_before = _runner_cpu_s(live_stack)
        more = next(pieces, "")  # the answer goes on, at this rate
        elapsed = time.monotonic() - first
        busy = (_runner_cpu_s(live_stack) - cpu_before) / elapsed
    assert more, "the answer ended after its first piece: it must be longer to test this"
    return Abandoned(first - start, len(more) / elapsed, busy)


def plain_then_disconnect(live_stack: LiveStack, path: str, generating_s: float) -> float:
    """Send a plain (unstreamed) request on a raw socket, wait until the model has worked on it
    for ``generating_s``, then close the socket; returns the runners' busy CPU rate."""
    url = urlsplit(live_stack.url)
    body = json.dumps(body_for(path, LONG_QUESTION, stream=False, max_tokens=LONG_MAX_TOKENS))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
        f"Authorization: Bearer {live_stack.handbook_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80))
    try:
        sock.sendall(head.encode() + body.encode())
        wait_until(lambda: runner_rate(live_stack, 0.5) > 0.2, 120.0, every_s=0.0)
        time.sleep(max(generating_s - 1.0, 0.0))
        busy = runner_rate(live_stack, 1.0)
    finally:
        sock.close()  # the client goes away without reading a byte
    return busy


def assert_model_stopped(
    live_stack: LiveStack, path: str, before: float, busy: float, *, within_s: float
) -> float:
    """The gateway counted the cancellation within ``within_s``, and the runner went idle a
    few tokens later (Ollama notices the closed connection when it has its next token) and
    stayed idle. Returns the seconds until the cancellation was counted."""
    waited = wait_until(lambda: cancellations(live_stack, path) >= before + 1, within_s)
    idle = IDLE_SHARE * busy
    wait_until(lambda: runner_rate(live_stack, 1.0) < idle, STOP_GRACE_S, every_s=0.0)
    after = runner_rate(live_stack, 2.0)
    assert after < idle, (
        f"the model kept generating after the client left: runner CPU {after:.2f}/s, "
        f"{busy:.2f}/s while the answer was read"
    )
    return waited


# --- the scenarios ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [QUERY, CHAT])
def test_a_client_that_disconnects_mid_answer_stops_the_model(
    live_stack: LiveStack, path: str
) -> None:
    wait_runner_quiet(live_stack)
    before = cancellations(live_stack, path)
    streamed_answer = stream_then_disconnect(live_stack, path)
    # a streamed call stops at the model's next token
    stream_stop_s = assert_model_stopped(
        live_stack, path, before, streamed_answer.busy_rate, within_s=30.0
    )

    wait_runner_quiet(live_stack)
    # a plain answer: the client hangs up once the model works on it; the call stops at the
    # model's first token after that (a model reading its prompt sends nothing to stop at)
    plain_busy = plain_then_disconnect(live_stack, path, 2.0)
    plain_stop_s = assert_model_stopped(
        live_stack,
        path,
        before + 1,
        plain_busy,
        within_s=2 * streamed_answer.first_token_s + 30.0,
    )
    print(
        f"\n{path}: first token {streamed_answer.first_token_s:.1f} s, "
        f"{streamed_answer.chars_per_s:.1f} characters/s, runner busy "
        f"{streamed_answer.busy_rate:.2f} CPU-s/s; stopped {stream_stop_s:.1f} s after the "
        f"streamed client left, {plain_stop_s:.1f} s after the plain one"
    )


def test_two_abandoned_answers_free_both_slots_for_the_next_caller(
    live_stack: LiveStack,
) -> None:
    """The incident: two abandoned answers held both of Ollama's slots until their timeout and
    the next caller timed out. Now the next caller is served as soon as the two are gone."""
    wait_runner_quiet(live_stack)
    before = cancellations(live_stack, CHAT)
    with (
        streamed(live_stack, CHAT, LONG_QUESTION) as first,
        streamed(live_stack, CHAT, LONG_QUESTION) as second,
    ):
        seen = len(next(first)) + len(next(second))  # both are generating, one slot each
        start = time.monotonic()
        got = len(next(first, "")) + len(next(second, ""))
        rate = got / (time.monotonic() - start)  # characters/s of the two together
    left = time.monotonic()
    # had they run on to max_tokens, the two would have needed about this long to finish; the
    # alias timeout would have cut them off first if that is shorter (the incident's case)
    abandoned_s = (2 * LONG_MAX_TOKENS * CHARS_PER_TOKEN - seen - got) / rate
    models = live_stack.components.models
    timeout_s = models.entry(live_stack.settings.generation.chat_alias).timeout_s
    bound_s = min(abandoned_s, timeout_s)
    wait_until(lambda: cancellations(live_stack, CHAT) >= before + 2, 30.0)

    body = body_for(CHAT, SHORT_QUESTION, stream=False, max_tokens=16)
    response = live_stack.post(CHAT, body, live_stack.handbook_key)
    served_s = time.monotonic() - left
    assert response.status_code == 200, response.text
    print(
        f"\nnext caller served {served_s:.1f} s after two abandoned answers "
        f"(they would have run about {abandoned_s:.0f} s more at {rate:.1f} characters/s, "
        f"or until the alias timeout of {timeout_s:.0f} s)"
    )
    assert served_s < bound_s


def test_a_cancelled_answer_is_audited_as_cancelled(live_stack: LiveStack) -> None:
    """Runs after the scenarios above: their requests are in the audit log as cancelled."""
    records = audit_records(live_stack.url, live_stack.admin_key, decision="cancelled", limit=50)
    assert {f"POST {QUERY}", f"POST {CHAT}"} <= {r["endpoint"] for r in records}
    assert all(r["reason"] == "client_disconnected" for r in records)
