"""Build the adapters from settings: the only place that knows which backend serves which port.

``gateway.main`` hands these builders to the app; the CLI calls them directly. Everything they
build is typed with ports in ``gateway.components``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.audit.store import AuditLog, PostgresAuditLog, SqliteAuditLog
from gateway.components import Components
from gateway.models.audit import ModelAudit
from gateway.models.config import (
    DEFAULT_RERANK_CANDIDATES,
    PACKAGED_EMBEDDER,
    PACKAGED_ONNX_MODEL,
    RERANK_ALIAS,
    ModelEntry,
    ModelsConfig,
    resolve_models,
)
from gateway.models.registry import ModelRegistry, ModelSet, config_digest
from gateway.security.auth import Authenticator, JwtVerifier
from gateway.security.keys import ApiKeys, KeyStore
from gateway.security.principal_cache import PrincipalCache
from gateway.security.rate_limit import RateLimiter
from gateway.security.secrets import weaviate_api_key
from gateway.settings import Settings
from services.embedding_reranker import EmbeddingReranker
from services.errors import ConfigError
from services.litellm_router import LiteLLMRouter
from services.local_embedder import LocalEmbedder
from services.ollama_embedder import OllamaEmbedder
from services.onnx_embedder import onnx_embedder, resolve_models_dir
from services.openai_embedder import OpenAIEmbedder
from services.ports import Embedder, Reranker
from services.presidio_redactor import PresidioRedactor
from services.remote_embedder import RemoteEmbedder
from services.tei_embedder import TEIEmbedder
from services.tei_reranker import TEIReranker
from services.weaviate_store import WeaviateConnection, WeaviateEndpoint, WeaviateStore

if TYPE_CHECKING:
    from sqlalchemy import Engine


def database_engine(settings: Settings) -> Engine | None:
    """The shared PostgreSQL engine when ``database.url`` is set, else None (embedded SQLite).
    Imported lazily: a one-host install never loads SQLAlchemy."""
    if settings.database.dsn() is None:
        return None
    from gateway.state.engine import engine_for

    return engine_for(settings)


def require_current_schema(settings: Settings) -> None:
    """At start: refuse a shared database whose schema is behind (``holdfast db upgrade``)."""
    engine = database_engine(settings)
    if engine is not None:
        from gateway.state.migrate import require_head

        require_head(engine)


def build_key_store(settings: Settings) -> ApiKeys:
    """Keys in the shared PostgreSQL when configured, else SQLite under the state directory."""
    engine = database_engine(settings)
    if engine is None:
        return KeyStore(settings.keys_db)
    from gateway.state.keys import PostgresKeyStore

    return PostgresKeyStore(engine)


def weaviate_connection(settings: Settings) -> WeaviateConnection:
    wv = settings.weaviate
    return WeaviateConnection(
        host=wv.host,
        http_port=wv.http_port,
        grpc_port=wv.grpc_port,
        api_key=weaviate_api_key(settings),
        collection=wv.collection,
        query_timeout_s=wv.query_timeout_s,
        insert_timeout_s=wv.insert_timeout_s,
        init_timeout_s=wv.init_timeout_s,
        connect_wait_s=wv.connect_wait_s,
        health_timeout_s=wv.health_timeout_s,
        replication_factor=wv.replication_factor,
        write_consistency=wv.write_consistency,
        read_consistency=wv.read_consistency,
        async_replication=wv.async_replication,
        async_frequency_s=wv.async_replication_frequency_s,
        deletion_strategy=wv.deletion_strategy,
        shard_count=wv.shard_count,
        failover=tuple(
            WeaviateEndpoint(n.host, n.http_port, n.grpc_port) for n in wv.failover_nodes
        ),
    )


def build_store(settings: Settings) -> WeaviateStore:
    wv = settings.weaviate
    return WeaviateStore(
        weaviate_connection(settings),
        section_fetch_limit=settings.retrieval.section_fetch_limit,
        twins_per_hash=settings.ingestion.max_duplicates_per_file,
        max_query_results=wv.max_query_results,
        route_ttl_s=wv.alias_cache_s,
        fusion=settings.retrieval.fusion,
        hit_vector_cache=wv.hit_vector_cache,
    )


def embedder_for(entry: ModelEntry) -> Embedder:
    """The adapter for one embedding entry (no I/O: call ``warm_up`` on it)."""
    params = entry.litellm_params
    batch = int(params.get("batch_size", 32))
    if entry.provider == "onnx":
        return _onnx_embedder(entry.provider_model, params, batch)
    if entry.is_local:
        path = params.get("model_path")
        if path is not None:  # a custom sentence-transformers folder (the optional extra)
            return LocalEmbedder(Path(path).expanduser(), batch_size=batch)
        if entry.model != PACKAGED_EMBEDDER:
            raise ConfigError(f"embedding alias {entry.model_name!r}: set model_path for a local/")
        # The id existing indexes record; the fp32 ONNX export gives the same vectors, no torch.
        return _onnx_embedder(PACKAGED_ONNX_MODEL, params, batch)
    assert entry.api_base is not None  # validated by ModelsConfig
    kinds: dict[str, type[RemoteEmbedder]] = {
        "ollama": OllamaEmbedder,
        "openai": OpenAIEmbedder,
        "tei": TEIEmbedder,
    }
    kind = kinds.get(entry.provider)
    if kind is not None:
        key = params.get("api_key")
        return kind(
            entry.api_base,
            entry.provider_model,
            timeout_s=entry.timeout_s,
            max_retries=entry.max_retries,
            batch_size=batch,
            headers={"Authorization": f"Bearer {key}"} if key else None,
        )
    raise ConfigError(f"embedding alias {entry.model_name!r}: no embedder for {entry.model!r}")


def _onnx_embedder(name: str, params: dict[str, Any], batch: int) -> Embedder:
    folder = params.get("models_dir")
    models_dir = Path(folder).expanduser() if folder else resolve_models_dir(os.environ)
    threads = params.get("threads")
    return onnx_embedder(
        name, models_dir, batch_size=batch, intra_op_threads=int(threads) if threads else None
    )


def reranker_for(entry: ModelEntry) -> Reranker:
    """The adapter for the rerank entry (no I/O: call ``warm_up`` on it)."""
    params = entry.litellm_params
    if entry.provider == "onnx":
        return EmbeddingReranker(
            _onnx_embedder(entry.provider_model, params, int(params.get("batch_size", 4))),
            entry.provider_model,
            max_candidates=int(params.get("max_candidates", DEFAULT_RERANK_CANDIDATES)),
            timeout_s=entry.timeout_s,
            batch_size=int(params.get("batch_size", 4)),
        )
    assert entry.api_base is not None  # validated by ModelsConfig
    return TEIReranker(
        entry.api_base,
        entry.provider_model,
        timeout_s=entry.timeout_s,
        max_retries=entry.max_retries,
    )


def build_model_set(
    settings: Settings, config: ModelsConfig, *, previous: ModelSet | None = None
) -> ModelSet:
    """Adapters for ``config``; unchanged embedding/rerank entries reuse ``previous``'s objects
    (an in-process model is not loaded twice)."""
    embed_entry = config.entry(settings.generation.embedding_alias)
    if embed_entry.model_info.mode != "embedding":
        raise ConfigError(f"alias {embed_entry.model_name!r} is not an embedding model")
    config.entry(settings.generation.chat_alias)  # must exist
    same_embedder = previous is not None and _same(previous.config, embed_entry)
    embedder = previous.embedder if same_embedder and previous else embedder_for(embed_entry)
    reranker: Reranker | None = None
    rerank_entry = next((e for e in config.model_list if e.model_name == RERANK_ALIAS), None)
    if rerank_entry is not None:
        same = previous is not None and _same(previous.config, rerank_entry)
        reranker = previous.reranker if same and previous else reranker_for(rerank_entry)
    return ModelSet(
        config=config,
        router=LiteLLMRouter(config.litellm_model_list(), fallbacks=config.fallback_map()),
        embedder=embedder,
        reranker=reranker,
        version=(previous.version + 1) if previous else 1,
        digest=config_digest(config),
    )


def _same(old: ModelsConfig, entry: ModelEntry) -> bool:
    return any(e == entry for e in old.model_list)


def warm_up_models(models: ModelSet) -> None:
    for part in (models.embedder, models.reranker, models.router):
        warm = getattr(part, "warm_up", None)
        if callable(warm):
            warm()


class AdapterModels:
    """The ``ModelSetBuilder`` the registry holds: the functions above, bound to settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def build(self, config: ModelsConfig, *, previous: ModelSet | None = None) -> ModelSet:
        return build_model_set(self._settings, config, previous=previous)

    def embedder_for(self, entry: ModelEntry) -> Embedder:
        return embedder_for(entry)

    def reranker_for(self, entry: ModelEntry) -> Reranker:
        return reranker_for(entry)

    def warm_up(self, models: ModelSet) -> None:
        warm_up_models(models)


def build_redactor(settings: Settings) -> PresidioRedactor | None:
    red = settings.redaction
    if not red.enabled:
        return None
    return PresidioRedactor(
        spacy_model=red.spacy_model,
        entities=red.entities,
        timeout_s=settings.limits.redaction_timeout_s,
    )


def build_audit_log(settings: Settings) -> AuditLog:
    """SQLite under the state directory, or PostgreSQL: ``audit.dsn`` when the audit backend is
    postgres, else the shared ``database.url`` when one is set (model changes follow it)."""
    audit = settings.audit
    if audit.backend == "postgres":
        if audit.dsn is None:
            raise ConfigError("audit.backend is postgres: set audit.dsn (HOLDFAST_AUDIT__DSN)")
        return PostgresAuditLog(
            audit.dsn.get_secret_value(), connect_timeout_s=audit.connect_timeout_s
        )
    shared = settings.database.dsn()
    if shared is not None:
        from gateway.state.engine import conninfo

        return PostgresAuditLog(
            conninfo(shared),
            connect_timeout_s=settings.database.connect_timeout_s,
            statement_timeout_s=settings.database.statement_timeout_s,
            create_schema=False,
        )
    return SqliteAuditLog(settings.audit_db)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """In memory without ``limits.storage_url``; else shared by every replica through Redis."""
    limits = settings.limits
    return RateLimiter(
        limits.rate_per_minute,
        limits.burst,
        storage_url=limits.storage_url.get_secret_value(),
        timeout_s=limits.storage_timeout_s,
    )


def build_components(settings: Settings) -> Components:
    require_current_schema(settings)
    models = resolve_models(settings)
    keys = build_key_store(settings)
    audit_log = build_audit_log(settings)
    return Components(
        settings=settings,
        registry=ModelRegistry(build_model_set(settings, models), AdapterModels(settings)),
        store=build_store(settings),
        redactor=build_redactor(settings),
        keys=keys,
        authenticator=Authenticator(
            keys,
            JwtVerifier(settings.auth.jwt) if settings.auth.jwt.enabled else None,
            PrincipalCache(keys.authenticate, ttl_s=settings.auth.key_cache_ttl_s),
        ),
        rate_limiter=build_rate_limiter(settings),
        audit=ModelAudit(audit_log),
        audit_log=audit_log,
    )
