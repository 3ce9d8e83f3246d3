"""``models.yaml``: which concrete model serves each alias. Admins edit this file, not code.

It follows LiteLLM's config format: a ``model_list`` of ``{model_name, litellm_params,
model_info}`` and ``router_settings.fallbacks``. The gateway and ingestion only name aliases.

Providers (the prefix of ``litellm_params.model``) by ``model_info.mode``:

- chat: ``ollama_chat/``, ``ollama/``, ``hosted_vllm/``, ``openai/`` (any OpenAI-compatible
  server, TGI's Messages API included), served through LiteLLM;
- embedding: ``onnx/`` (in-process ONNX Runtime, a model installed by scripts/install-models.sh),
  ``local/`` (``local/all-MiniLM-L6-v2`` runs the ONNX ``all-minilm-l6-v2``; any other
  ``local/`` names a sentence-transformers folder in ``model_path`` and needs the optional extra
  ``holdfast[sentence-transformers]``), ``ollama/`` (``/api/embed``),
  ``openai/`` (``{api_base}/embeddings``), ``tei/`` (TEI's ``/embed``);
- rerank: ``onnx/`` (in-process: a second ONNX embedding model re-scores the leading candidates,
  fused with the retrieval order; see services/embedding_reranker.py; ``max_candidates`` caps
  how many, ``timeout`` bounds the time), ``tei/`` (TEI's ``/rerank``, a cross-encoder on GPUs).

Every entry must set ``timeout`` (seconds) and ``max_retries``: LiteLLM's defaults would block
for 100 minutes on a hung server. The air-gap guard refuses an ``api_base`` outside loopback,
private address ranges and cluster-internal names unless the entry says ``allow_external: true``,
and refuses the ``huggingface/`` provider outright (it contacts the public hub).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway.models.packaged import PACKAGED_CHAT_MODELS, PackagedChatModel
from gateway.settings import Settings
from services.errors import ConfigError
from services.onnx_embedder import ONNX_MODELS

LOCAL_PREFIX = "local/"
IN_PROCESS_PROVIDERS = frozenset({"local", "onnx"})
# The default embedder's id, as existing indexes record it. It is served by the fp32 ONNX export
# of the same model (PACKAGED_ONNX_MODEL, installed by scripts/install-models.sh: same vectors),
# not by sentence-transformers; other local/ entries name a sentence-transformers model_path.
PACKAGED_EMBEDDER = "local/all-MiniLM-L6-v2"
PACKAGED_ONNX_MODEL = "all-minilm-l6-v2"
RERANK_ALIAS = "rerank-default"  # the alias that serves reranking, when models.yaml has it
DEFAULT_RERANK_CANDIDATES = 4  # an onnx/ reranker re-scores this many leading candidates

Mode = Literal["chat", "embedding", "rerank"]
PROVIDERS: dict[str, frozenset[str]] = {
    "chat": frozenset({"ollama_chat", "ollama", "hosted_vllm", "openai"}),
    "embedding": frozenset({"local", "onnx", "ollama", "openai", "tei"}),
    "rerank": frozenset({"onnx", "tei"}),
}
# Names that resolve inside the site: Kubernetes services, reserved private suffixes.
INTERNAL_SUFFIXES = (".svc", ".cluster.local", ".internal", ".home.arpa", ".local", ".lan")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    mode: Mode = Field("chat", description="What the alias serves: chat, embedding or rerank.")


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_name: str = Field(description="The alias callers use, e.g. chat-default.")
    litellm_params: dict[str, Any] = Field(
        description="LiteLLM parameters: model, api_base, "
        "timeout, max_retries, max_tokens, temperature..."
    )
    model_info: ModelInfo = Field(default_factory=ModelInfo)
    allow_external: bool = Field(
        False, description="Allow an api_base outside loopback, private ranges and cluster DNS."
    )

    @property
    def model(self) -> str:
        return str(self.litellm_params.get("model", ""))

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0] if "/" in self.model else ""

    @property
    def provider_model(self) -> str:
        """The model name the provider knows (after the ``provider/`` prefix)."""
        return self.model.split("/", 1)[1] if "/" in self.model else self.model

    @property
    def api_base(self) -> str | None:
        value = self.litellm_params.get("api_base")
        return str(value) if value else None

    @property
    def timeout_s(self) -> float:
        return float(self.litellm_params["timeout"])

    @property
    def max_retries(self) -> int:
        return int(self.litellm_params["max_retries"])

    @property
    def is_local(self) -> bool:
        """Runs inside the gateway's process (no server, no api_base)."""
        return self.provider in IN_PROCESS_PROVIDERS


class RouterSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fallbacks: list[dict[str, list[str]]] = Field(
        default_factory=list,
        description="LiteLLM style: [{alias: [fallback alias, ...]}], tried in order on failure.",
    )


def is_internal_host(host: str) -> bool:
    """Loopback, private/link-local addresses, ``localhost``, single-label and cluster names."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return (
            host == "localhost"
            or host.endswith(".localhost")
            or "." not in host
            or host.endswith(INTERNAL_SUFFIXES)
        )
    return address.is_loopback or address.is_private or address.is_link_local


def _entry_problems(entry: ModelEntry) -> list[str]:
    name, params, mode = entry.model_name, entry.litellm_params, entry.model_info.mode
    problems: list[str] = []
    timeout = params.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(f"{name}: litellm_params.timeout must be a positive number of seconds")
    retries = params.get("max_retries")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        problems.append(f"{name}: litellm_params.max_retries must be an integer from 0 to 10")
    if not entry.model or "/" not in entry.model:
        problems.append(f"{name}: litellm_params.model must be provider/model, e.g. ollama/x")
        return problems
    if entry.provider == "huggingface":
        problems.append(
            f"{name}: the huggingface/ provider contacts the public hub; for TEI use tei/<model>"
            " or openai/<model> with api_base"
        )
        return problems
    if entry.provider not in PROVIDERS[mode]:
        allowed = ", ".join(f"{p}/" for p in sorted(PROVIDERS[mode]))
        problems.append(f"{name}: provider {entry.provider}/ cannot serve {mode} (use {allowed})")
    if entry.provider == "onnx" and entry.provider_model not in ONNX_MODELS:
        known = ", ".join(f"onnx/{name}" for name in ONNX_MODELS)
        problems.append(f"{name}: unknown ONNX model {entry.model!r} (known: {known})")
    if entry.is_local:
        return problems
    if not entry.api_base:
        problems.append(f"{name}: set litellm_params.api_base (the server inside your network)")
        return problems
    parts = urlsplit(entry.api_base)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        problems.append(f"{name}: api_base must be an http(s) URL, got {entry.api_base!r}")
    elif not entry.allow_external and not is_internal_host(parts.hostname):
        problems.append(
            f"{name}: api_base host {parts.hostname!r} is outside loopback, private ranges and "
            "cluster DNS (air gap); set allow_external: true on the entry if this is intended"
        )
    return problems


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_list: list[ModelEntry]
    router_settings: RouterSettings = Field(default_factory=RouterSettings)

    @model_validator(mode="after")
    def _check(self) -> ModelsConfig:
        problems: list[str] = []
        names = [e.model_name for e in self.model_list]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"alias(es) defined twice: {', '.join(duplicates)}")
        for entry in self.model_list:
            problems.extend(_entry_problems(entry))
        modes = {e.model_name: e.model_info.mode for e in self.model_list}
        for alias, chain in self.fallback_map().items():
            if alias not in modes:
                problems.append(f"fallbacks name an unknown alias {alias!r}")
                continue
            for other in chain:
                if other not in modes or other == alias:
                    problems.append(f"{alias}: fallback {other!r} is not another defined alias")
                elif modes[other] != "chat" or modes[alias] != "chat":
                    problems.append(f"{alias}: fallbacks are for chat aliases only")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def entry(self, alias: str) -> ModelEntry:
        for entry in self.model_list:
            if entry.model_name == alias:
                return entry
        known = ", ".join(e.model_name for e in self.model_list)
        raise ConfigError(f"models.yaml has no alias {alias!r} (known: {known})")

    def fallback_map(self) -> dict[str, list[str]]:
        merged: dict[str, list[str]] = {}
        for item in self.router_settings.fallbacks:
            for alias, chain in item.items():
                merged.setdefault(alias, []).extend(chain)
        return merged

    def litellm_model_list(self) -> list[dict[str, Any]]:
        """Entries LiteLLM serves (chat), in its own format."""
        return [
            {"model_name": e.model_name, "litellm_params": dict(e.litellm_params)}
            for e in self.model_list
            if not e.is_local and e.model_info.mode == "chat"
        ]

    def changed_aliases(self, other: ModelsConfig) -> dict[str, str]:
        """What differs from ``other`` (the old config): alias -> added / removed / changed."""
        mine = {e.model_name: e for e in self.model_list}
        theirs = {e.model_name: e for e in other.model_list}
        out: dict[str, str] = {}
        for alias in sorted(mine.keys() | theirs.keys()):
            if alias not in theirs:
                out[alias] = "added"
            elif alias not in mine:
                out[alias] = "removed"
            elif mine[alias] != theirs[alias]:
                out[alias] = "changed"
            elif self.fallback_map().get(alias) != other.fallback_map().get(alias):
                out[alias] = "fallbacks changed"
        return out


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _chat_params(settings: Settings, ollama_name: str, model: PackagedChatModel) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": f"ollama_chat/{ollama_name}",
        "api_base": settings.ollama.base_url,
        # generous: a 2-core CPU under load takes tens of seconds for a long answer
        "timeout": 180,
        "max_retries": 0,
        "max_tokens": 256,
        "temperature": 0.1,
    }
    if not model.instruct:
        # a base model continues the document: stop where the answer ends
        params["stop"] = ["\nQuestion:", "\n\n", "\n[", "Passages:"]
        params["max_tokens"] = 200
    return params


def default_models(settings: Settings) -> ModelsConfig:
    """The single-machine default: the packaged chat model (Qwen2.5-Coder 0.5B Instruct unless
    ``ollama.packaged_model`` says otherwise) on the local Ollama, MiniLM in-process; each of
    ``ollama.extra_models`` as the alias ``chat-<name>``."""
    ol = settings.ollama
    entries = [
        ModelEntry(
            model_name=settings.generation.chat_alias,
            litellm_params=_chat_params(
                settings, ol.chat_model, PACKAGED_CHAT_MODELS[ol.packaged_model]
            ),
        ),
        ModelEntry(
            model_name=settings.generation.embedding_alias,
            litellm_params={"model": PACKAGED_EMBEDDER, "timeout": 30, "max_retries": 0},
            model_info=ModelInfo(mode="embedding"),
        ),
    ]
    for name in dict.fromkeys(ol.extra_models):
        model = PACKAGED_CHAT_MODELS[name]
        if model.ollama_name == ol.chat_model:
            continue
        entries.append(
            ModelEntry(
                model_name=f"chat-{name}",
                litellm_params=_chat_params(settings, model.ollama_name, model),
            )
        )
    return ModelsConfig(model_list=entries)


def parse_models(text: str, source: str = "models.yaml") -> ModelsConfig:
    """Validate the text of a models file; ``ConfigError`` with a one-line reason if invalid."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping with a model_list")
    try:
        return ModelsConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source} is invalid: {_one_line(exc)}") from exc


def load_models(path: Path) -> ModelsConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text") from exc
    return parse_models(text, str(path))


def dump_models(config: ModelsConfig) -> str:
    body = config.model_dump(mode="json", exclude_defaults=True)
    return str(yaml.safe_dump(body, sort_keys=False))


# Opt-in CPU reranking, written commented out at the end of a new models.yaml (the end of
# model_list): uncomment to rerank every answer's candidates (and searches that ask for it).
RERANK_EXAMPLE = f"""\
# Reranking on the CPU (opt-in): a second in-process encoder re-scores the leading
# {DEFAULT_RERANK_CANDIDATES} candidates, fused with the retrieval order (about +1.2 s a query
# on 2 busy cores; README 'Models'). On GPUs use a TEI cross-encoder: tei/<model>, api_base.
# - model_name: {RERANK_ALIAS}
#   litellm_params:
#     model: onnx/bge-small-en-v1.5-q
#     timeout: 3
#     max_retries: 0
#     max_candidates: {DEFAULT_RERANK_CANDIDATES}
#   model_info:
#     mode: rerank
"""


def ensure_models_file(settings: Settings) -> Path:
    """Write the default ``models.yaml`` on first start so admins have a file to edit."""
    path = settings.models_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "# Holdfast model routing (LiteLLM model_list format). Aliases are what the gateway\n"
            "# names; change the model behind one here. `local/` models run in-process.\n"
            "# Every entry needs timeout and max_retries; see README 'Models'.\n"
            + dump_models(default_models(settings))
            + RERANK_EXAMPLE,
            encoding="utf-8",
        )
    return path


def resolve_models(settings: Settings) -> ModelsConfig:
    """The file if there is one, else the built-in defaults (so no file is needed to run)."""
    path = settings.models_path
    return load_models(path) if path.exists() else default_models(settings)
