"""What a running gateway holds, typed with ports: the composition root (``container``,
``ingest_jobs``) builds these from settings, and the HTTP edge and the policy only receive them.

Nothing here names a concrete adapter, so a module that needs ``Components`` or
``IngestService`` pulls in no vendor client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.store import AuditLog
from gateway.models.audit import ModelAudit
from gateway.models.config import ModelsConfig
from gateway.models.registry import ModelRegistry, ModelSetBuilder
from gateway.models.write_fence import WriteFence
from gateway.security.auth import Authenticator
from gateway.security.keys import ApiKeys
from gateway.security.rate_limit import RateLimiter
from gateway.settings import Settings
from ingestion.identity import Identity
from ingestion.jobs import JobQueue
from ingestion.validation import Limits
from ingestion.worker import IngestWorker
from services.errors import RedactorUnavailableError
from services.ports import (
    Embedder,
    ManagedRedactor,
    ManagedRouter,
    ManagedStore,
    Redactor,
    Reranker,
)

log = logging.getLogger("holdfast.gateway")


@dataclass(slots=True)
class Components:
    settings: Settings
    registry: ModelRegistry
    store: ManagedStore
    redactor: ManagedRedactor | None
    keys: ApiKeys
    authenticator: Authenticator
    rate_limiter: RateLimiter
    audit: ModelAudit
    audit_log: AuditLog

    # Each read returns the set current at that moment; a caller that keeps the object keeps
    # using it even if the registry swaps meanwhile.
    @property
    def models(self) -> ModelsConfig:
        return self.registry.current().config

    @property
    def router(self) -> ManagedRouter:
        return self.registry.current().router

    @property
    def embedder(self) -> Embedder:
        return self.registry.current().embedder

    @property
    def reranker(self) -> Reranker | None:
        return self.registry.current().reranker

    @property
    def model_builder(self) -> ModelSetBuilder:
        """Builds the adapters of a models.yaml (a reload or ``models check`` uses it)."""
        return self.registry.builder

    @property
    def embedder_model_id(self) -> str:
        """The embedding model id the index records (alias target, e.g. local/all-MiniLM-L6-v2)."""
        entry = self.models.entry(self.settings.generation.embedding_alias)
        return str(entry.litellm_params.get("model", entry.model_name))

    def warm_up(self, *, wait_for_store: bool = False) -> None:
        """Open clients and load models (constructors do no I/O). A redactor that cannot load
        does not stop the gateway: it reports not ready and every request fails closed (503).
        ``wait_for_store``: a service starting beside Weaviate waits for it (``connect_wait_s``)."""
        self.store.warm_up(wait=wait_for_store)
        models = self.registry.current()
        self.registry.builder.warm_up(models)
        self.store.ensure_schema(
            embedding_model=str(self.embedder_model_id), dimensions=models.embedder.dimensions
        )
        if self.redactor is not None:
            try:
                self.redactor.warm_up()
            except RedactorUnavailableError:
                log.error("PII redactor unavailable: queries will be refused until it loads")

    def close(self) -> None:
        self.store.close()
        if self.redactor is not None:
            self.redactor.close()
        self.rate_limiter.close()


@dataclass(slots=True)
class IngestService:
    """The ingest job store and its background worker, as the jobs and documents routes use
    them (``ingest_jobs.build_ingest_service`` wires it)."""

    jobs: JobQueue
    worker: IngestWorker
    uploads: Path
    limits: Limits
    redactor: Redactor | None
    identity: Identity  # keys stored ids, and the tags of values redacted from file names
    # every write of documents (the worker's batches, DELETE) holds a lease on it
    write_fence: WriteFence
    # builds more worker loops over the same store and pipeline (``holdfast worker``)
    new_worker: Callable[[], IngestWorker] | None = None

    def close(self) -> None:
        self.worker.stop()
        close = getattr(self.redactor, "close", None)
        if close is not None:
            close()
