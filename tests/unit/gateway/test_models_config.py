"""models.yaml: defaults, the LiteLLM subset, loading and first-start writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.models.config import (
    ModelEntry,
    ModelInfo,
    ModelsConfig,
    default_models,
    ensure_models_file,
    load_models,
    resolve_models,
)
from gateway.settings import Settings, load_settings
from services.errors import ConfigError

pytestmark = pytest.mark.unit

LIMITS = {"timeout": 10, "max_retries": 1}
BASE = {"api_base": "http://10.0.0.5:8000/v1"}


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return load_settings(ollama={"port": 12345, "chat_model": "my-model"})


def test_default_chat_alias_points_at_the_local_ollama_model(settings: Settings) -> None:
    entry = default_models(settings).entry(settings.generation.chat_alias)
    params = entry.litellm_params
    assert params["model"] == "ollama_chat/my-model"
    assert params["api_base"] == "http://127.0.0.1:12345"
    assert isinstance(params["timeout"], int | float) and params["timeout"] > 0
    assert params["max_retries"] == 0
    assert entry.model_info.mode == "chat"


def test_default_embedding_alias_is_the_packaged_local_model(settings: Settings) -> None:
    entry = default_models(settings).entry(settings.generation.embedding_alias)
    assert entry.is_local
    assert entry.model_info.mode == "embedding"
    assert "timeout" in entry.litellm_params and "max_retries" in entry.litellm_params


def test_litellm_model_list_excludes_local_and_embedding_entries() -> None:
    config = ModelsConfig(
        model_list=[
            ModelEntry(model_name="chat", litellm_params={**LIMITS, "model": "openai/g", **BASE}),
            ModelEntry(
                model_name="local-embed",
                litellm_params={**LIMITS, "model": "local/tiny"},
                model_info=ModelInfo(mode="embedding"),
            ),
            ModelEntry(
                model_name="remote-embed",
                litellm_params={**LIMITS, "model": "openai/text-embedding-3-small", **BASE},
                model_info=ModelInfo(mode="embedding"),
            ),
        ]
    )
    assert config.litellm_model_list() == [
        {"model_name": "chat", "litellm_params": {**LIMITS, "model": "openai/g", **BASE}}
    ]


def test_default_litellm_model_list_holds_only_the_chat_alias(settings: Settings) -> None:
    listed = default_models(settings).litellm_model_list()
    assert [e["model_name"] for e in listed] == [settings.generation.chat_alias]


def test_litellm_model_list_returns_copies_of_params(settings: Settings) -> None:
    config = default_models(settings)
    config.litellm_model_list()[0]["litellm_params"]["timeout"] = 1
    assert config.entry(settings.generation.chat_alias).litellm_params["timeout"] != 1


def test_load_models_rejects_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("model_list: [\n  - {model_name: x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_models(path)


def test_load_models_rejects_unknown_top_level_key(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("model_list: []\nroutr_settings: {}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="routr_settings"):
        load_models(path)


def test_load_models_rejects_unknown_entry_key(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "model_list:\n  - model_name: a\n    litellm_params: {model: x}\n    modle_info: {}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="modle_info"):
        load_models(path)


def test_load_models_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_models(path)


def test_load_models_reports_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="cannot read"):
        load_models(path)


def test_load_models_reports_a_non_utf8_file_as_config_error(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_bytes(b"model_list: []\n# caf\xe9\n")
    with pytest.raises(ConfigError):
        load_models(path)


def test_ensure_models_file_writes_defaults_that_load_back_equal(settings: Settings) -> None:
    path = ensure_models_file(settings)
    assert path == settings.models_path
    assert path.read_text(encoding="utf-8").startswith("#")
    assert load_models(path) == default_models(settings)
    assert resolve_models(settings) == default_models(settings)


def test_ensure_models_file_never_overwrites_an_existing_file(settings: Settings) -> None:
    path = settings.models_path
    path.parent.mkdir(parents=True)
    path.write_text("model_list: []\n", encoding="utf-8")
    assert ensure_models_file(settings) == path
    assert path.read_text(encoding="utf-8") == "model_list: []\n"


def test_resolve_models_falls_back_to_defaults_without_a_file(settings: Settings) -> None:
    assert not settings.models_path.exists()
    assert resolve_models(settings) == default_models(settings)


def test_unknown_alias_raises_config_error_naming_known_aliases(settings: Settings) -> None:
    with pytest.raises(ConfigError) as info:
        default_models(settings).entry("chat-fancy")
    message = str(info.value)
    assert "chat-fancy" in message
    assert settings.generation.chat_alias in message
    assert settings.generation.embedding_alias in message


def test_an_onnx_embedding_runs_in_process_without_an_api_base() -> None:
    entry = ModelEntry(
        model_name="embed-default",
        litellm_params={"model": "onnx/bge-small-en-v1.5-q", **LIMITS},
        model_info=ModelInfo(mode="embedding"),
    )
    config = ModelsConfig(model_list=[entry])
    assert config.entry("embed-default").is_local
    assert config.litellm_model_list() == []


def test_an_unknown_onnx_model_is_refused_with_the_known_names() -> None:
    entry = ModelEntry(
        model_name="embed-default",
        litellm_params={"model": "onnx/bge-large-en", **LIMITS},
        model_info=ModelInfo(mode="embedding"),
    )
    with pytest.raises((ConfigError, ValueError), match=r"onnx/bge-small-en-v1\.5-q"):
        ModelsConfig(model_list=[entry])
