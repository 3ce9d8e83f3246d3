"""The worker on the real SQLite job store with a fake batch runner: batch-by-batch claims that
take turns across principals, leases that refuse a worker that lost them, bounded attempts."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from ingestion.jobs import Job, JobFile, JobStore, NewFile
from ingestion.leases import Heartbeat, Lease, LeaseLostError
from ingestion.pipeline import FileResult
from ingestion.worker import RETRY, IngestWorker, RunBatch
from services.errors import StoreUnavailableError
from services.redaction_profile import RedactionProfile

pytestmark = pytest.mark.unit


def _job(store: JobStore, owner: str, files: int) -> str:
    return store.create(
        owner=owner,
        groups=["g"],
        redaction=RedactionProfile.NONE,
        metadata={},
        files=[NewFile(source=f"{owner}-{i}.md", path="") for i in range(files)],
        writer_groups=None,
    )


def _indexed(job: Job, batch: Sequence[JobFile]) -> list[FileResult]:
    return [FileResult(f.source, "indexed", doc_id=f.source, chunks=2) for f in batch]


def _worker(
    store: JobStore, tmp_path: Path, run_batch: RunBatch = _indexed, max_attempts: int = 3
) -> IngestWorker:
    return IngestWorker(
        store, run_batch, uploads=tmp_path / "uploads", batch_files=4, max_attempts=max_attempts
    )


def test_a_small_job_of_another_principal_runs_after_one_batch_of_a_big_one(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "jobs.db")
    big = _job(store, "alice", 40)
    worker = _worker(store, tmp_path)
    seen: list[str] = []
    assert worker.run_once() == "running"
    small = _job(store, "bob", 1)
    while (status := worker.run_once()) is not None:
        seen.append(status)
        if store.get(small).status == "succeeded":
            break
    assert store.get(small).status == "succeeded"
    assert store.get(big).files_done == 4, "bob's job ran right after alice's first batch"
    assert worker.run_job(big) == "succeeded"
    assert store.get(big).chunks_written == 80


def test_a_job_is_claimed_by_one_worker_at_a_time_and_a_lost_lease_writes_nothing(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "jobs.db")
    job_id = _job(store, "alice", 2)
    lease = store.claim("w1", lease_s=0.2, max_attempts=3)
    assert lease is not None and lease.attempt == 1
    assert store.claim("w2", lease_s=30, max_attempts=3) is None, "held"
    time.sleep(0.3)
    taken = store.claim("w2", lease_s=30, max_attempts=3)
    assert taken is not None and taken.job_id == job_id and taken.attempt == 2
    with pytest.raises(LeaseLostError):
        store.record_file(job_id, 0, status="indexed", lease=lease)
    with pytest.raises(LeaseLostError):
        store.finish(job_id, lease=lease)
    assert not store.renew(lease, lease_s=30)
    assert store.renew(taken, lease_s=30)
    store.record_file(job_id, 0, status="indexed", lease=taken)
    assert [f.status for f in store.get(job_id).files] == ["indexed", "pending"]


def test_a_heartbeat_keeps_the_lease_past_its_length_and_reports_a_loss(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    _job(store, "alice", 1)
    lease = store.claim("w1", lease_s=0.3, max_attempts=3)
    assert lease is not None
    with Heartbeat(lambda: store.renew(lease, lease_s=0.3), 0.1, job_id=lease.job_id) as beat:
        time.sleep(0.8)
        assert store.claim("w2", lease_s=30, max_attempts=3) is None, "renewed, still held"
        beat.check()
    stolen = Lease(lease.job_id, "w-gone", 1)
    with Heartbeat(lambda: store.renew(stolen, lease_s=1), 0.05, job_id=lease.job_id) as beat:
        time.sleep(0.3)
        with pytest.raises(LeaseLostError):
            beat.check()


def test_a_batch_that_keeps_raising_is_retried_then_its_job_fails_without_blocking_others(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "jobs.db")
    poison = _job(store, "mallory", 3)
    fine = _job(store, "alice", 2)
    calls: list[str] = []

    def run_batch(job: Job, batch: Sequence[JobFile]) -> list[FileResult]:
        calls.append(job.job_id)
        if job.job_id == poison:
            raise RuntimeError("the parser process pool broke")
        return _indexed(job, batch)

    worker = _worker(store, tmp_path, run_batch, max_attempts=3)
    while worker.run_once() is not None:
        pass
    assert store.get(fine).status == "succeeded"
    failed = store.get(poison)
    assert failed.status == "failed" and calls.count(poison) == 3
    assert {f.reason for f in failed.files} == {
        "gave up after 3 attempts: RuntimeError: the parser process pool broke"
    }
    assert store.claim("w9", lease_s=30, max_attempts=3) is None, "nothing left"


def test_progress_resets_the_attempts_and_a_backend_error_fails_only_its_batch(
    tmp_path: Path,
) -> None:
    store = JobStore(tmp_path / "jobs.db")
    job_id = _job(store, "alice", 12)
    flaky = iter([RuntimeError("once"), None, RuntimeError("twice"), StoreUnavailableError("down")])

    def run_batch(job: Job, batch: Sequence[JobFile]) -> list[FileResult]:
        error = next(flaky, None)
        if error is not None:
            raise error
        return _indexed(job, batch)

    worker = _worker(store, tmp_path, run_batch, max_attempts=2)
    outcomes = []
    while (outcome := worker.run_once()) is not None:
        outcomes.append(outcome)
    assert outcomes == [RETRY, "running", RETRY, "running", "partial"]
    statuses = [f.status for f in store.get(job_id).files]
    assert statuses == ["indexed"] * 4 + ["failed"] * 4 + ["indexed"] * 4


def test_a_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    job_id = _job(store, "alice", 1)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}/{gone.stdout.strip()}/abc"
    assert store.claim(dead, lease_s=600, max_attempts=3) is not None
    taken = store.claim("w2", lease_s=30, max_attempts=3)
    assert taken is not None and taken.job_id == job_id, "a restarted gateway resumes at once"


def test_two_worker_threads_never_run_the_same_batch(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.db")
    jobs = [_job(store, owner, 9) for owner in ("alice", "bob", "carol")]
    ran: list[tuple[str, int]] = []
    running: set[int] = set()
    overlapped = threading.Event()
    lock = threading.Lock()

    def run_batch(job: Job, batch: Sequence[JobFile]) -> list[FileResult]:
        with lock:
            ran.extend((job.job_id, f.idx) for f in batch)
            running.add(threading.get_ident())
            if len(running) > 1:
                overlapped.set()
        # hold the batch until a second thread runs one too (bounded): the claims raced
        overlapped.wait(timeout=2.0)
        with lock:
            running.discard(threading.get_ident())
        return _indexed(job, batch)

    workers = [_worker(store, tmp_path, run_batch) for _ in range(3)]

    def drain(worker: IngestWorker) -> None:
        while worker.run_once() is not None:
            pass

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlapped.is_set(), "no two threads ever ran batches at the same time"
    assert sorted(ran) == sorted((j, i) for j in jobs for i in range(9)), "each file once"
    assert all(store.get(j).status == "succeeded" for j in jobs)
