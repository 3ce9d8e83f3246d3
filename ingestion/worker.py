"""The background worker: takes ingest jobs from the job store, a batch of files at a time.

Runs as a thread inside the gateway process (single-machine default). At start it picks up
jobs left ``running`` or ``queued`` by a previous process, so a killed gateway finishes its work.
A file row is marked only after its batch is written; a file written but not yet marked when the
process died is seen again as ``unchanged`` (the pipeline's write order guarantees that a
document counts as indexed only once all its chunks are in).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ingestion.jobs import Job, JobFile, JobQueue
from ingestion.pipeline import FileResult
from services.errors import HoldfastError

log = logging.getLogger("holdfast.ingest")

RunBatch = Callable[[Job, Sequence[JobFile]], list[FileResult]]


class IngestWorker:
    def __init__(
        self,
        jobs: JobQueue,
        run_batch: RunBatch,
        *,
        uploads: Path,
        batch_files: int,
        poll_s: float = 1.0,
    ) -> None:
        self._jobs = jobs
        self._uploads = uploads
        self._run_batch = run_batch
        self._batch_files = max(1, batch_files)
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ingest-worker", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        """A new job was queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            job_id = self._jobs.next_runnable()
            if job_id is None:
                self._wake.wait(self._poll_s)
                self._wake.clear()
                continue
            try:
                self.run_job(job_id)
            except Exception:  # keep the worker alive; the job stays resumable
                log.exception("ingest job %s stopped", job_id)
                self._stop.wait(self._poll_s)

    def run_job(self, job_id: str) -> str:
        self._jobs.mark_running(job_id)
        job = self._jobs.get(job_id)
        pending = [f for f in job.files if f.status == "pending"]
        for start in range(0, len(pending), self._batch_files):
            if self._stop.is_set():
                return "running"
            batch = pending[start : start + self._batch_files]
            try:
                results = self._run_batch(job, batch)
            except HoldfastError as exc:  # backend down after retries: these files fail clearly
                results = [
                    FileResult(source=f.source, status="failed", reason=str(exc)) for f in batch
                ]
            for file, result in zip(batch, results, strict=True):
                self._jobs.record_file(
                    job_id,
                    file.idx,
                    status=result.status,
                    doc_id=result.doc_id,
                    chunks=result.chunks,
                    reason=result.reason,
                    redactions=result.redactions,
                )
        status = self._jobs.finish(job_id)
        shutil.rmtree(self._uploads / job_id, ignore_errors=True)  # the job's uploaded copies
        return status
