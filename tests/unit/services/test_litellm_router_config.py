"""LiteLLMRouter construction and health, without importing litellm or reaching a server."""

from __future__ import annotations

import pytest

from services.errors import ConfigError
from services.litellm_router import LiteLLMRouter, _probe_url

pytestmark = pytest.mark.unit

CHAT = {
    "model_name": "chat-default",
    "litellm_params": {"model": "ollama_chat/gemma", "timeout": 60, "max_retries": 0},
}


@pytest.mark.parametrize("missing", ["timeout", "max_retries"])
def test_alias_without_timeout_or_retries_is_refused_by_name(missing: str) -> None:
    params = {"model": "openai/gpt", "timeout": 10, "max_retries": 1}
    del params[missing]
    with pytest.raises(ConfigError) as info:
        LiteLLMRouter([CHAT, {"model_name": "chat-remote", "litellm_params": params}])
    assert "chat-remote" in str(info.value)
    assert missing in str(info.value)


def test_alias_without_params_names_both_missing_settings() -> None:
    with pytest.raises(ConfigError, match="timeout, max_retries"):
        LiteLLMRouter([{"model_name": "bare"}])


def test_aliases_lists_every_model_name_in_order() -> None:
    other = {"model_name": "chat-big", "litellm_params": {"timeout": 5, "max_retries": 0}}
    assert LiteLLMRouter([CHAT, other]).aliases == ["chat-default", "chat-big"]


def test_health_of_an_alias_without_api_base_is_ok() -> None:
    status = LiteLLMRouter([CHAT]).health("chat-default")
    assert status.ok is True
    assert status.name == "llm"


def test_health_of_an_unknown_alias_is_not_ok() -> None:
    status = LiteLLMRouter([CHAT]).health("chat-nope")
    assert status.ok is False
    assert "chat-nope" in status.detail


@pytest.mark.parametrize(
    ("params", "url"),
    [
        ({"model": "ollama_chat/g", "api_base": "http://h:11434/"}, "http://h:11434/api/version"),
        ({"model": "ollama/g", "api_base": "http://h:11434"}, "http://h:11434/api/version"),
        ({"model": "openai/gpt", "api_base": "http://h:4000/v1"}, "http://h:4000/v1/models"),
        ({"model": "openai/gpt"}, None),
    ],
)
def test_probe_url_uses_the_cheapest_endpoint_of_the_provider(
    params: dict[str, str], url: str | None
) -> None:
    assert _probe_url(params) == url
