"""Stream fallbacks: the order and the first-token rule, with a scripted stand-in for LiteLLM."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from services.cancellation import Cancellation
from services.errors import BackendTimeoutError, ModelUnavailableError
from services.litellm_router import LiteLLMRouter
from services.records import ChatMessage

pytestmark = pytest.mark.unit


def _entry(alias: str) -> dict[str, object]:
    return {
        "model_name": alias,
        "litellm_params": {"model": f"ollama_chat/{alias}-model", "timeout": 5, "max_retries": 0},
    }


class ScriptedRouter(LiteLLMRouter):
    """Each alias's stream is a script: text pieces, or an exception raised at that point."""

    def __init__(self, scripts: dict[str, list[object]]) -> None:
        super().__init__(
            [_entry(a) for a in scripts], fallbacks={"primary": [a for a in scripts][1:]}
        )
        self.scripts = scripts
        self.called: list[str] = []

    def _pieces(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        max_tokens: int | None,
        cancel: Cancellation | None = None,
    ) -> Iterator[str]:
        self.called.append(alias)
        for step in self.scripts[alias]:
            if isinstance(step, Exception):
                raise step
            yield str(step)


ASK = [ChatMessage("user", "hi")]


def test_a_primary_failing_before_its_first_token_hands_over_to_the_fallback() -> None:
    router = ScriptedRouter(
        {"primary": [ModelUnavailableError("down")], "backup": ["Hel", "lo"], "spare": ["x"]}
    )
    stream = router.stream("primary", ASK)
    assert "".join(stream) == "Hello"
    assert stream.fallback_used is True and stream.alias == "backup"
    assert stream.model == "ollama_chat/backup-model"
    assert router.called == ["primary", "backup"]


def test_a_failure_after_the_first_token_ends_the_stream_without_a_fallback() -> None:
    router = ScriptedRouter({"primary": ["Hel", BackendTimeoutError("slow")], "backup": ["never"]})
    stream = router.stream("primary", ASK)
    assert next(stream) == "Hel"
    with pytest.raises(BackendTimeoutError):
        next(stream)
    assert router.called == ["primary"] and stream.fallback_used is False


def test_when_every_alias_fails_the_last_failure_is_raised() -> None:
    router = ScriptedRouter(
        {"primary": [ModelUnavailableError("a")], "backup": [ModelUnavailableError("b")]}
    )
    with pytest.raises(ModelUnavailableError, match="b"):
        list(router.stream("primary", ASK))
    with pytest.raises(ModelUnavailableError, match="a"):
        list(router.stream("primary", ASK, use_fallbacks=False))


def test_an_empty_answer_is_an_answer_not_a_failure() -> None:
    router = ScriptedRouter({"primary": [], "backup": ["unused"]})
    stream = router.stream("primary", ASK)
    assert list(stream) == [] and stream.alias == "primary"
    assert router.called == ["primary"]


class EndlessRouter(LiteLLMRouter):
    """A model that never stops sending tokens, one every 50 ms (each read is quick, so only
    a bound on the whole answer ends it)."""

    def __init__(self, timeout_s: float) -> None:
        entry = {
            "model_name": "primary",
            "litellm_params": {"model": "openai/endless", "timeout": timeout_s, "max_retries": 0},
        }
        super().__init__([entry])

    def _call(self, alias: str, messages: Sequence[ChatMessage], **_: object) -> tuple[Any, Any]:
        def tokens() -> Iterator[Any]:
            while True:
                time.sleep(0.05)
                yield SimpleNamespace(choices=[SimpleNamespace(delta=SimpleNamespace(content="a"))])

        return tokens(), {}


def test_a_streamed_answer_ends_within_the_alias_timeout_as_a_whole_answer_does() -> None:
    import litellm  # noqa: F401  (its first import takes seconds: not inside the timing)

    stream = EndlessRouter(timeout_s=0.5).stream("primary", ASK)
    started = time.monotonic()
    pieces = 0
    with pytest.raises(BackendTimeoutError, match="timed out"):
        for _ in stream:
            pieces += 1
            if pieces > 100:  # 5 s of tokens: unbounded (fails as "did not raise")
                stream.close()
                break
    assert pieces >= 3  # it streamed, then the bound on the whole answer ended it
    assert time.monotonic() - started < 5.0
