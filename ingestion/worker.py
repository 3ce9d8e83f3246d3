"""The ingest worker: claims one batch of a job at a time from the job store and runs it.

It runs as a thread inside the gateway (``ingestion.run_in_gateway``, the one-host default) or in
``holdfast worker`` processes beside several gateways that only enqueue. Each claim is a lease
(``ingestion.leases``) that a heartbeat renews while the batch runs, picked fairly across
principals (``ingestion.scheduling``); after the batch the job goes back to the queue, so a
small upload never waits for a big one to end. A file row is marked only after its batch is
written; a batch redone after its worker died sees the files it had already written as
``unchanged`` (the pipeline writes a document's first chunk last, and chunk ids are
deterministic), so nothing is lost and nothing is indexed twice.

What a batch raises decides what happens next:

- a ``HoldfastError`` (a backend still down after its retries): the batch's files fail with
  that reason and the job goes on;
- anything else (a bug, a broken process pool): the job is released for another attempt, and
  after ``ingestion.max_attempts`` attempts without progress its pending files fail;
- ``LeaseLostError``: the job is someone else's now; this worker writes nothing more to it.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from ingestion.jobs import FINAL_JOB, Job, JobFile, JobQueue
from ingestion.leases import Heartbeat, Lease, LeaseLostError, new_worker_id
from ingestion.pipeline import FileResult
from ingestion.scheduling import error_text
from services.errors import HoldfastError

log = logging.getLogger("holdfast.ingest")

RunBatch = Callable[[Job, Sequence[JobFile]], list[FileResult]]
RETRY = "retry"  # what ``run_claimed`` returns when a batch raised and the job was released


class IngestWorker:
    def __init__(
        self,
        jobs: JobQueue,
        run_batch: RunBatch,
        *,
        uploads: Path,
        batch_files: int,
        poll_s: float = 1.0,
        lease_s: float = 60.0,
        max_attempts: int = 3,
        worker_id: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._uploads = uploads
        self._run_batch = run_batch
        self._batch_files = max(1, batch_files)
        self.poll_s = poll_s
        self._lease_s = lease_s
        self._max_attempts = max_attempts
        self.worker_id = worker_id or new_worker_id()
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
        """Stop after the batch in hand (its lease is released, so another worker goes on)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                outcome = self.run_once()
            except Exception:  # the store is away: keep the worker alive and look again
                log.exception("ingest worker %s: claim failed", self.worker_id)
                outcome = None
            if outcome is None or outcome == RETRY:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def run_once(self) -> str | None:
        """Claim the fairest runnable job and run one batch of it. Returns the job's status
        after the batch (``RETRY`` if it raised), or None when nothing was runnable."""
        lease = self._jobs.claim(
            self.worker_id, lease_s=self._lease_s, max_attempts=self._max_attempts
        )
        if lease is None:
            return None
        renew = lambda: self._jobs.renew(lease, lease_s=self._lease_s)  # noqa: E731
        try:
            with Heartbeat(renew, self._lease_s / 3, job_id=lease.job_id) as beat:
                return self.run_claimed(lease, beat)
        except LeaseLostError as exc:
            log.warning("ingest worker %s: %s; leaving it", self.worker_id, exc)
            return RETRY

    def run_job(self, job_id: str) -> str:
        """Run batches until ``job_id`` has ended (other runnable jobs take their turns too);
        its status, or its current one when nothing is runnable any more."""
        while (status := self._jobs.get(job_id).status) not in FINAL_JOB:
            if self.run_once() is None:
                break
        return status

    def run_claimed(self, lease: Lease, beat: Heartbeat) -> str:
        """One batch of the leased job; the status the job has afterwards."""
        job = self._jobs.get(lease.job_id)
        pending = [f for f in job.files if f.status == "pending"]
        batch = pending[: self._batch_files]
        if batch:
            try:
                results = self._run_batch(job, batch)
            except HoldfastError as exc:  # backend down after retries: these files fail clearly
                results = [
                    FileResult(source=f.source, status="failed", reason=str(exc)) for f in batch
                ]
            except Exception as exc:  # a bug or a broken pool: another attempt, maybe elsewhere
                log.exception(
                    "ingest job %s: batch failed (attempt %d)", lease.job_id, lease.attempt
                )
                beat.check()
                self._jobs.release(lease, error=error_text(exc))
                return RETRY
            beat.check()  # lost meanwhile: the next holder redoes this batch, we write nothing
            for file, result in zip(batch, results, strict=True):
                self._jobs.record_file(
                    lease.job_id,
                    file.idx,
                    status=result.status,
                    doc_id=result.doc_id,
                    chunks=result.chunks,
                    reason=result.reason,
                    redactions=result.redactions,
                    lease=lease,
                )
            self._jobs.drop_local_copies(lease.job_id, batch)
        if len(pending) > len(batch):
            self._jobs.release(lease)  # back in the queue: other principals get their turn
            return "running"
        status = self._jobs.finish(lease.job_id, lease=lease)
        shutil.rmtree(self._uploads / lease.job_id, ignore_errors=True)  # its uploaded copies
        return status
