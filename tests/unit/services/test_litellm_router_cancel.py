"""Cancellation in the router: the token is checked between the model's pieces, and every way
out of a call closes its connection. LiteLLM's streamed response is scripted here; that the
model server really stops is the integration test's job (tests/integration/test_cancellation.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from services.cancellation import Cancellation
from services.errors import BackendTimeoutError, RequestCancelledError
from services.litellm_router import LiteLLMRouter
from services.records import ChatMessage

pytestmark = pytest.mark.unit

ASK = [ChatMessage("user", "hi")]


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Delta:
    content: str | None


@dataclass
class Choice:
    delta: Delta


@dataclass
class Chunk:
    choices: list[Choice]
    usage: Usage | None = None


@dataclass
class Upstream:
    """What LiteLLM's stream wraps: closing it is what frees the model server."""

    closed: bool = False

    def close(self) -> None:
        self.closed = True


@dataclass
class ScriptedResponse:
    pieces: Sequence[str]
    on_piece: Any = None  # called with each piece's index before it is handed out
    completion_stream: Upstream = field(default_factory=Upstream)
    handed_out: int = 0

    def __iter__(self) -> Iterator[Chunk]:
        for i, text in enumerate(self.pieces):
            if self.on_piece is not None:
                self.on_piece(i)
            self.handed_out += 1
            yield Chunk([Choice(Delta(text))])
        yield Chunk([], usage=Usage(prompt_tokens=7, completion_tokens=len(self.pieces)))


class ScriptedRouter(LiteLLMRouter):
    def __init__(self, response: ScriptedResponse, *, provider: str = "ollama_chat", **kw: Any):
        entries = [
            {
                "model_name": alias,
                "litellm_params": {
                    "model": f"{provider}/m",
                    # the first call imports LiteLLM inside the alias's deadline (5 s on a slow
                    # machine; the gateway imports it at start-up): only the timeout test sets one
                    "timeout": kw.get("timeout", 60),
                    "max_retries": 0,
                },
            }
            for alias in ("primary", "backup")
        ]
        super().__init__(entries, fallbacks={"primary": ["backup"]})
        self.response = response
        self.calls: list[dict[str, Any]] = []

    def _call(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None,
        stream: bool,
        client: Any = None,
        include_usage: bool = False,
    ) -> tuple[Any, Mapping[str, Any]]:
        self.calls.append({"alias": alias, "stream": stream, "client": client})
        return self.response, self._params(alias)


def test_a_cancelled_stream_stops_at_the_next_piece_and_closes_the_model_connection() -> None:
    cancel = Cancellation()
    response = ScriptedResponse(["a", "b", "c", "d"], lambda i: i == 2 and cancel.cancel())
    router = ScriptedRouter(response)
    stream = router.stream("primary", ASK, cancel=cancel)
    assert [next(stream), next(stream)] == ["a", "b"]
    with pytest.raises(RequestCancelledError):
        next(stream)
    assert response.handed_out == 3  # nothing read past the piece that saw the token
    assert response.completion_stream.closed
    handler = router.calls[0]["client"]
    assert handler is not None and handler._client.is_closed  # the call's own connection
    assert [c["alias"] for c in router.calls] == ["primary"]  # a cancellation is no failure


def test_a_reader_that_closes_the_stream_closes_the_model_connection() -> None:
    response = ScriptedResponse(["a", "b", "c"])
    router = ScriptedRouter(response)
    stream = router.stream("primary", ASK)
    assert next(stream) == "a"
    stream.close()
    assert response.completion_stream.closed
    assert router.calls[0]["client"]._client.is_closed
    assert list(stream) == []


def test_closing_a_stream_before_reading_never_calls_the_model() -> None:
    router = ScriptedRouter(ScriptedResponse(["a"]))
    stream = router.stream("primary", ASK)
    stream.close()
    assert list(stream) == [] and router.calls == []


def test_a_cancellable_answer_is_the_stream_assembled_with_its_token_counts() -> None:
    router = ScriptedRouter(ScriptedResponse(["Hel", "lo"]))
    completion = router.complete("primary", ASK, cancel=Cancellation())
    assert completion.text == "Hello" and completion.alias == "primary"
    assert (completion.prompt_tokens, completion.completion_tokens) == (7, 2)
    assert router.calls[0]["stream"] is True
    assert router.calls[0]["client"]._client.is_closed


def test_an_answer_cancelled_before_the_call_never_reaches_the_model() -> None:
    cancel = Cancellation()
    cancel.cancel()
    router = ScriptedRouter(ScriptedResponse(["a"]))
    with pytest.raises(RequestCancelledError):
        router.complete("primary", ASK, cancel=cancel)
    assert router.calls == []


def test_a_cancellable_answer_keeps_the_alias_timeout_for_the_whole_call() -> None:
    response = ScriptedResponse(["a"] * 50, lambda i: time.sleep(0.01))
    router = ScriptedRouter(response, timeout=0.05)
    with pytest.raises(BackendTimeoutError):
        router.complete("primary", ASK, cancel=Cancellation(), use_fallbacks=False)
    assert response.handed_out < 50 and response.completion_stream.closed


def test_providers_with_their_own_sdk_client_get_their_stream_closed_instead() -> None:
    response = ScriptedResponse(["a", "b"])
    router = ScriptedRouter(response, provider="openai")
    stream = router.stream("primary", ASK)
    next(stream)
    stream.close()
    assert router.calls[0]["client"] is None and response.completion_stream.closed
