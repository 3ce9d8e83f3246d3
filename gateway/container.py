"""Build the adapters from settings: the only place that knows which backend serves which port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.keys import KeyStore
from gateway.models_config import PACKAGED_EMBEDDER, ModelsConfig, resolve_models
from gateway.settings import Settings
from gateway.stack import weaviate_api_key
from services.errors import ConfigError
from services.litellm_router import LiteLLMRouter
from services.local_embedder import LocalEmbedder, packaged_minilm_path
from services.presidio_redactor import PresidioRedactor
from services.weaviate_store import WeaviateConnection, WeaviateStore


@dataclass(slots=True)
class Components:
    settings: Settings
    models: ModelsConfig
    store: WeaviateStore
    embedder: LocalEmbedder
    router: LiteLLMRouter
    redactor: PresidioRedactor | None
    keys: KeyStore

    @property
    def embedder_model_id(self) -> str:
        """The embedding model id the index records (alias target, e.g. local/all-MiniLM-L6-v2)."""
        entry = self.models.entry(self.settings.generation.embedding_alias)
        return str(entry.litellm_params.get("model", entry.model_name))

    def warm_up(self) -> None:
        """Open clients and load models (constructors do no I/O)."""
        self.store.warm_up()
        self.embedder.warm_up()
        self.store.ensure_schema(
            embedding_model=str(self.embedder_model_id), dimensions=self.embedder.dimensions
        )
        self.router.warm_up()
        if self.redactor is not None:
            self.redactor.warm_up()

    def close(self) -> None:
        self.store.close()


def build_store(settings: Settings) -> WeaviateStore:
    wv = settings.weaviate
    return WeaviateStore(
        WeaviateConnection(
            host=wv.host,
            http_port=wv.http_port,
            grpc_port=wv.grpc_port,
            api_key=weaviate_api_key(settings),
            collection=wv.collection,
            query_timeout_s=wv.query_timeout_s,
            health_timeout_s=wv.health_timeout_s,
        )
    )


def build_embedder(settings: Settings, models: ModelsConfig) -> LocalEmbedder:
    entry = models.entry(settings.generation.embedding_alias)
    model = str(entry.litellm_params.get("model", ""))
    if not entry.is_local:
        raise ConfigError(
            f"embedding alias {entry.model_name!r} uses {model!r}; this version serves embeddings "
            "in-process only: use model: local/<name> (with model_path for another folder)"
        )
    path = entry.litellm_params.get("model_path")
    if path is None and model != PACKAGED_EMBEDDER:
        raise ConfigError(f"embedding alias {entry.model_name!r}: set model_path for {model!r}")
    folder = Path(path).expanduser() if path else packaged_minilm_path()
    return LocalEmbedder(folder, batch_size=int(entry.litellm_params.get("batch_size", 32)))


def build_redactor(settings: Settings) -> PresidioRedactor | None:
    red = settings.redaction
    if not red.enabled:
        return None
    return PresidioRedactor(
        spacy_model=red.spacy_model, entities=red.entities, score_threshold=red.score_threshold
    )


def build_components(settings: Settings) -> Components:
    models = resolve_models(settings)
    return Components(
        settings=settings,
        models=models,
        store=build_store(settings),
        embedder=build_embedder(settings, models),
        router=LiteLLMRouter(models.litellm_model_list()),
        redactor=build_redactor(settings),
        keys=KeyStore(settings.keys_db),
    )
