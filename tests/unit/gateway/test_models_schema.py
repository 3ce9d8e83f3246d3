"""models.yaml validation: mandatory limits, the air-gap guard, providers and fallbacks."""

from __future__ import annotations

import pytest

from gateway.models.config import is_internal_host, parse_models
from services.errors import ConfigError

pytestmark = pytest.mark.unit

GOOD = """
model_list:
  - model_name: chat-default
    litellm_params: {model: ollama_chat/gemma, api_base: "http://127.0.0.1:11434",
                     timeout: 60, max_retries: 0, max_tokens: 200, temperature: 0.1}
  - model_name: chat-large
    litellm_params: {model: hosted_vllm/llama-70b, api_base: "http://vllm.llm.svc:8000/v1",
                     timeout: 120, max_retries: 1}
  - model_name: embed-default
    litellm_params: {model: local/all-MiniLM-L6-v2, timeout: 30, max_retries: 0}
    model_info: {mode: embedding}
  - model_name: embed-tei
    litellm_params: {model: tei/bge-small, api_base: "http://tei:80", timeout: 10, max_retries: 2}
    model_info: {mode: embedding}
  - model_name: rerank-default
    litellm_params: {model: tei/bge-reranker, api_base: "http://192.168.1.9:8081",
                     timeout: 10, max_retries: 1}
    model_info: {mode: rerank}
router_settings:
  fallbacks:
    - chat-default: [chat-large]
"""


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_a_complete_file_with_every_provider_family_loads() -> None:
    config = parse_models(GOOD)
    assert [e.model_name for e in config.model_list][:2] == ["chat-default", "chat-large"]
    assert config.fallback_map() == {"chat-default": ["chat-large"]}
    assert config.entry("rerank-default").provider == "tei"
    assert config.entry("chat-large").timeout_s == 120.0


@pytest.mark.parametrize("key", ["timeout", "max_retries"])
def test_every_alias_must_set_timeout_and_retries(key: str) -> None:
    text = _with(
        "timeout: 120, max_retries: 1",
        "timeout: 120" if key == "max_retries" else "max_retries: 1",
    )
    with pytest.raises(ConfigError, match=rf"chat-large: litellm_params\.{key}"):
        parse_models(text)


@pytest.mark.parametrize("bad", ["0", "-5", "true", "'soon'"])
def test_timeout_must_be_a_positive_number(bad: str) -> None:
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        parse_models(_with("timeout: 120,", f"timeout: {bad},"))


def test_public_api_base_is_refused_by_the_air_gap_guard() -> None:
    text = _with("http://vllm.llm.svc:8000/v1", "https://api.example.com/v1")
    with pytest.raises(
        ConfigError, match=r"chat-large: api_base host 'api.example.com'.*allow_ext"
    ):
        parse_models(text)


def test_allow_external_lets_an_entry_use_a_public_api_base() -> None:
    text = _with(
        "  - model_name: chat-large\n",
        "  - model_name: chat-large\n    allow_external: true\n",
    ).replace("http://vllm.llm.svc:8000/v1", "https://api.example.com/v1")
    assert parse_models(text).entry("chat-large").allow_external is True


def test_openai_provider_without_api_base_is_refused_so_it_never_reaches_the_public_api() -> None:
    text = _with(', api_base: "http://vllm.llm.svc:8000/v1"', "").replace(
        "hosted_vllm/llama-70b", "openai/gpt-4o"
    )
    with pytest.raises(ConfigError, match=r"chat-large: set litellm_params\.api_base"):
        parse_models(text)


def test_huggingface_provider_is_refused_because_it_contacts_the_hub() -> None:
    with pytest.raises(ConfigError, match="huggingface/ provider contacts the public hub"):
        parse_models(_with("tei/bge-small", "huggingface/bge-small"))


def test_a_provider_that_cannot_serve_the_mode_is_named() -> None:
    with pytest.raises(ConfigError, match=r"rerank-default: provider ollama/ cannot serve rerank"):
        parse_models(_with("tei/bge-reranker", "ollama/bge-reranker"))


def test_fallback_to_an_undefined_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="fallback 'chat-huge' is not another defined alias"):
        parse_models(_with("[chat-large]", "[chat-huge]"))


def test_fallback_between_embedding_aliases_is_refused() -> None:
    with pytest.raises(ConfigError, match="fallbacks are for chat aliases only"):
        parse_models(_with("chat-default: [chat-large]", "embed-default: [embed-tei]"))


def test_duplicate_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match="defined twice: chat-large"):
        parse_models(_with("  - model_name: chat-default\n", "  - model_name: chat-large\n"))


def test_all_problems_are_reported_on_one_line() -> None:
    text = _with("timeout: 120,", "timeout: 0,").replace("tei/bge-small", "huggingface/x")
    with pytest.raises(ConfigError) as info:
        parse_models(text)
    message = str(info.value)
    assert "\n" not in message
    assert "chat-large" in message and "embed-tei" in message


def test_changed_aliases_names_added_removed_and_changed_entries() -> None:
    old = parse_models(GOOD)
    new = parse_models(
        _with("ollama_chat/gemma", "ollama_chat/gemma-alt").replace(
            "  - model_name: embed-tei", "  - model_name: embed-other"
        )
    )
    assert new.changed_aliases(old) == {
        "chat-default": "changed",
        "embed-other": "added",
        "embed-tei": "removed",
    }
    assert old.changed_aliases(old) == {}


@pytest.mark.parametrize(
    ("host", "internal"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("172.16.0.4", True),
        ("192.168.10.10", True),
        ("169.254.1.1", True),
        ("fd00::5", True),
        ("localhost", True),
        ("ollama", True),
        ("vllm.ai.svc.cluster.local", True),
        ("tei.models.svc", True),
        ("8.8.8.8", False),
        ("api.openai.com", False),
        ("example.org", False),
    ],
)
def test_internal_hosts_are_loopback_private_or_cluster_names(host: str, internal: bool) -> None:
    assert is_internal_host(host) is internal
