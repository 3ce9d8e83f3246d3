"""Build the adapters from settings: the only place that knows which backend serves which port."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gateway.auth import Authenticator, JwtVerifier
from gateway.keys import KeyStore
from gateway.models_config import PACKAGED_EMBEDDER, ModelsConfig, resolve_models
from gateway.rate_limit import RateLimiter
from gateway.settings import Settings
from gateway.stack import weaviate_api_key
from services.errors import ConfigError, RedactorUnavailableError
from services.litellm_router import LiteLLMRouter
from services.local_embedder import LocalEmbedder, packaged_minilm_path
from services.presidio_redactor import PresidioRedactor
from services.weaviate_store import WeaviateConnection, WeaviateStore

log = logging.getLogger("holdfast.gateway")


@dataclass(slots=True)
class Components:
    settings: Settings
    models: ModelsConfig
    store: WeaviateStore
    embedder: LocalEmbedder
    router: LiteLLMRouter
    redactor: PresidioRedactor | None
    keys: KeyStore
    authenticator: Authenticator
    rate_limiter: RateLimiter

    def warm_up(self) -> None:
        """Open clients and load models (constructors do no I/O). A redactor that cannot load
        does not stop the gateway: it reports not ready and every request fails closed (503)."""
        self.store.warm_up()
        self.store.ensure_schema()
        self.embedder.warm_up()
        self.router.warm_up()
        if self.redactor is not None:
            try:
                self.redactor.warm_up()
            except RedactorUnavailableError:
                log.error("PII redactor unavailable: queries will be refused until it loads")

    def close(self) -> None:
        self.store.close()
        if self.redactor is not None:
            self.redactor.close()


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
        spacy_model=red.spacy_model,
        entities=red.entities,
        score_threshold=red.score_threshold,
        timeout_s=settings.limits.redaction_timeout_s,
    )


def build_components(settings: Settings) -> Components:
    models = resolve_models(settings)
    keys = KeyStore(settings.keys_db)
    return Components(
        settings=settings,
        models=models,
        store=build_store(settings),
        embedder=build_embedder(settings, models),
        router=LiteLLMRouter(models.litellm_model_list()),
        redactor=build_redactor(settings),
        keys=keys,
        authenticator=Authenticator(
            keys, JwtVerifier(settings.auth.jwt) if settings.auth.jwt.enabled else None
        ),
        rate_limiter=RateLimiter(settings.limits.rate_per_minute, settings.limits.burst),
    )
