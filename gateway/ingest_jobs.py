"""Wires the ingest job store and background worker from settings and the app's components."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.container import Components
from gateway.settings import Settings
from ingestion.embedding import EmbeddingPolicy
from ingestion.jobs import Job, JobFile, JobStore
from ingestion.pipeline import ChunkingPolicy, FileResult, IngestOptions, ingest_batch
from ingestion.redaction_pool import PooledRedactor
from ingestion.validation import Limits
from ingestion.worker import IngestWorker
from services.ports import Redactor
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


def job_store(settings: Settings) -> JobStore:
    return JobStore(settings.state_dir / "jobs.db")


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
        score_threshold=red.score_threshold,
    )
    return PooledRedactor(factory, workers=settings.ingestion.redaction_workers)


@dataclass(slots=True)
class IngestService:
    jobs: JobStore
    worker: IngestWorker
    uploads: Path
    limits: Limits
    redactor: Redactor | None

    def close(self) -> None:
        self.worker.stop()
        close = getattr(self.redactor, "close", None)
        if close is not None:
            close()


def build_ingest_service(components: Components) -> IngestService:
    settings = components.settings
    jobs = job_store(settings)
    limits = limits_from(settings)
    redactor = ingest_redactor(settings, components.redactor)
    chunking = ChunkingPolicy(settings.chunking.max_tokens, settings.chunking.overlap_tokens)
    embedding = EmbeddingPolicy(
        batch_size=settings.ingestion.embed_batch_size,
        concurrency=settings.ingestion.embed_concurrency,
        retries=settings.ingestion.embed_retries,
    )

    def run_batch(job: Job, files: Sequence[JobFile]) -> list[FileResult]:
        options = IngestOptions(
            groups=job.groups,
            redact=job.redact and redactor is not None,
            chunking=chunking,
            limits=limits,
            embedding=embedding,
        )
        return ingest_batch(
            [(Path(file.path), file.source) for file in files],
            options=options,
            store=components.store,
            embedder=components.embedder,
            redactor=redactor,
        )

    uploads = uploads_dir(settings)
    worker = IngestWorker(jobs, run_batch, uploads=uploads)
    return IngestService(jobs, worker, uploads, limits, redactor)
