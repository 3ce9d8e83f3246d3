"""Wires the ingest job store and background worker from settings and the app's components
(composition root: it names the pooled redactor's adapter)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from gateway.components import Components, IngestService
from gateway.models.write_fence import INGEST_WAIT_S, write_fence_for, writing
from gateway.observability.metrics import GatewayMetrics, label
from gateway.security.secrets import id_key
from gateway.settings import Settings
from ingestion.embedding import EmbeddingPolicy
from ingestion.identity import Identity
from ingestion.jobs import Job, JobFile, JobQueue, JobStore
from ingestion.leases import Heartbeat, Lease
from ingestion.pipeline import ChunkingPolicy, FileResult, IngestOptions, ingest_batch
from ingestion.redaction_pool import PooledRedactor
from ingestion.validation import Limits
from ingestion.worker import IngestWorker
from services.ports import Redactor, embedding_window
from services.presidio_batch import BatchPresidioRedactor

_MIB = 1024 * 1024


def limits_from(settings: Settings) -> Limits:
    ing = settings.ingestion
    return Limits(
        max_file_bytes=int(ing.max_file_mb * _MIB),
        max_pages=ing.max_pages,
        max_unpacked_bytes=int(ing.max_unpacked_mb * _MIB),
    )


def uploads_dir(settings: Settings) -> Path:
    return settings.state_dir / "uploads"


def job_store(settings: Settings) -> JobQueue:
    """Jobs in the shared PostgreSQL when ``database.url`` is set (uploads as bytea, spooled
    here per batch), else SQLite and the staged files under the state directory."""
    if settings.database.dsn() is None:
        return JobStore(settings.state_dir / "jobs.db")
    from gateway.state.engine import engine_for
    from gateway.state.jobs import PostgresJobStore

    engine = engine_for(settings)
    assert engine is not None
    return PostgresJobStore(engine, spool=uploads_dir(settings))


def ingest_redactor(settings: Settings, fallback: Redactor | None) -> Redactor | None:
    """Redaction for ingestion: a process pool when configured, else the app's redactor."""
    red = settings.redaction
    if fallback is None or not red.enabled:
        return None
    if settings.ingestion.redaction_workers < 1:
        return fallback
    factory = functools.partial(
        BatchPresidioRedactor,
        spacy_model=red.spacy_model,
        entities=list(red.entities),
    )
    return PooledRedactor(
        factory,
        workers=settings.ingestion.redaction_workers,
        timeout_s=settings.ingestion.redaction_batch_timeout_s,
    )


class TracedIngestWorker(IngestWorker):
    """One span per claimed batch of a job, with the job's status after it; ingestion's own
    stage spans (tracer "holdfast.ingestion") nest in it."""

    def __init__(self, *args: Any, tracer: Tracer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracer = tracer

    def run_claimed(self, lease: Lease, beat: Heartbeat) -> str:
        with self._tracer.start_as_current_span(
            "ingest.job",
            attributes={"holdfast.job.id": lease.job_id, "holdfast.job.attempt": lease.attempt},
            record_exception=False,
        ) as span:
            status = super().run_claimed(lease, beat)
            span.set_attribute("holdfast.job.status", status)
            return status


def build_ingest_service(
    components: Components,
    metrics: GatewayMetrics | None = None,
    tracer: Tracer | None = None,
) -> IngestService:
    settings = components.settings
    jobs = job_store(settings)
    limits = limits_from(settings)
    redactor = ingest_redactor(settings, components.redactor)
    identity = Identity(id_key(settings))
    fence = write_fence_for(settings)
    embedding = EmbeddingPolicy(
        batch_size=settings.ingestion.embed_batch_size,
        concurrency=settings.ingestion.embed_concurrency,
        retries=settings.ingestion.embed_retries,
    )

    def run_batch(job: Job, files: Sequence[JobFile]) -> list[FileResult]:
        chunking = ChunkingPolicy(  # per batch: a model reload may change the window
            settings.chunking.max_tokens,
            settings.chunking.overlap_tokens,
            window_tokens=embedding_window(components.embedder),
        )
        options = IngestOptions(
            groups=job.groups,
            identity=identity,
            writer_groups=job.writer_groups,
            redact=job.redact and redactor is not None,
            profile=job.redaction,
            chunking=chunking,
            limits=limits,
            embedding=embedding,
        )
        results = ingest_batch(
            [(jobs.upload_path(job.job_id, file), file.source) for file in files],
            options=options,
            store=components.store,
            embedder=components.embedder,
            redactor=redactor,
            # a reindex's switch waits for these writes, and they for it
            write_lease=functools.partial(
                writing, fence, f"ingest job {job.job_id}", wait_s=INGEST_WAIT_S
            ),
        )
        span = trace.get_current_span()
        for result in results:
            span.add_event(
                "file",
                {
                    "holdfast.file.status": result.status,
                    "holdfast.file.doc_id": result.doc_id,
                    "holdfast.file.chunks": result.chunks,
                },
            )
            if metrics is not None:
                metrics.files_ingested.labels(label(result.status)).inc()
                metrics.chunks_written.inc(result.chunks if result.status == "indexed" else 0)
                metrics.observe_redactions(result.redactions, "ingest")
        return results

    uploads = uploads_dir(settings)

    def new_worker() -> IngestWorker:
        """A worker loop over this service's store and pipeline (``holdfast worker`` runs
        ``--concurrency`` of them; the gateway one, when ``ingestion.run_in_gateway``)."""
        return TracedIngestWorker(
            jobs,
            run_batch,
            uploads=uploads,
            batch_files=settings.ingestion.batch_files,
            lease_s=settings.ingestion.lease_s,
            max_attempts=settings.ingestion.max_attempts,
            tracer=tracer or trace.NoOpTracer(),
        )

    worker = new_worker()
    return IngestService(
        jobs, worker, uploads, limits, redactor, identity, write_fence=fence, new_worker=new_worker
    )
