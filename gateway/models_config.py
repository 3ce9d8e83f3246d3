"""``models.yaml``: which concrete model serves each alias. Admins edit this file, not code.

It follows LiteLLM's ``model_list`` format. Entries whose model starts with ``local/`` are served
in-process (the packaged sentence-transformers model); everything else goes to LiteLLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.settings import Settings
from services.errors import ConfigError

LOCAL_PREFIX = "local/"
PACKAGED_EMBEDDER = "local/all-MiniLM-L6-v2"


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    mode: Literal["chat", "embedding", "rerank"] = "chat"


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_name: str = Field(description="The alias callers use, e.g. chat-default.")
    litellm_params: dict[str, Any] = Field(
        description="LiteLLM parameters: model, api_base, "
        "timeout, max_retries, max_tokens, temperature..."
    )
    model_info: ModelInfo = Field(default_factory=ModelInfo)

    @property
    def is_local(self) -> bool:
        return str(self.litellm_params.get("model", "")).startswith(LOCAL_PREFIX)


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_list: list[ModelEntry]

    def entry(self, alias: str) -> ModelEntry:
        for entry in self.model_list:
            if entry.model_name == alias:
                return entry
        known = ", ".join(e.model_name for e in self.model_list)
        raise ConfigError(f"models.yaml has no alias {alias!r} (known: {known})")

    def litellm_model_list(self) -> list[dict[str, Any]]:
        """Entries LiteLLM serves, in its own format."""
        return [
            {"model_name": e.model_name, "litellm_params": dict(e.litellm_params)}
            for e in self.model_list
            if not e.is_local and e.model_info.mode == "chat"
        ]


def default_models(settings: Settings) -> ModelsConfig:
    """The single-machine default: the packaged Gemma on the local Ollama, MiniLM in-process."""
    return ModelsConfig(
        model_list=[
            ModelEntry(
                model_name=settings.generation.chat_alias,
                litellm_params={
                    "model": f"ollama_chat/{settings.ollama.chat_model}",
                    "api_base": settings.ollama.base_url,
                    "timeout": 120,
                    "max_retries": 0,
                    "max_tokens": 200,
                    "temperature": 0.1,
                    # a base model continues the document: stop where the answer ends
                    "stop": ["\nQuestion:", "\n\n", "\n[", "Passages:"],
                },
            ),
            ModelEntry(
                model_name=settings.generation.embedding_alias,
                litellm_params={"model": PACKAGED_EMBEDDER, "timeout": 30, "max_retries": 0},
                model_info=ModelInfo(mode="embedding"),
            ),
        ]
    )


def load_models(path: Path) -> ModelsConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return ModelsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path} is invalid: {exc}") from exc


def ensure_models_file(settings: Settings) -> Path:
    """Write the default ``models.yaml`` on first start so admins have a file to edit."""
    path = settings.models_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        body = yaml.safe_dump(default_models(settings).model_dump(mode="json"), sort_keys=False)
        path.write_text(
            "# Holdfast model routing (LiteLLM model_list format). Aliases are what the gateway\n"
            "# names; change the model behind one here. `local/` models run in-process.\n" + body,
            encoding="utf-8",
        )
    return path


def resolve_models(settings: Settings) -> ModelsConfig:
    """The file if there is one, else the built-in defaults (so no file is needed to run)."""
    path = settings.models_path
    return load_models(path) if path.exists() else default_models(settings)
