"""`holdfast worker` processes on one real PostgreSQL and a real Weaviate, behind a gateway that
only enqueues (ingestion.run_in_gateway: false): a worker SIGKILLed mid-job is replaced by the
other once its lease runs out, and the index then holds exactly the chunks of a clean run; a job
that keeps killing its worker is given up after ingestion.max_attempts while other jobs finish;
a one-file upload of another principal finishes within two batches of a running 500-file job.

The test reads job progress straight from PostgreSQL (every 20 ms, below the API's rate limit).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from gateway.local import stack
from gateway.local.processes import ProcessSupervisor, StartupError
from gateway.settings import Settings
from tests.corpus_builder.build import text_files
from tests.integration.conftest import PORT_BASE
from tests.integration.pg_server import running_postgres
from tests.integration.shared_stack import (
    FINAL,
    WorkerStack,
    db_upgrade,
    job_files,
    job_row,
    prepare,
    single_weaviate,
    start_gateway,
    wait_job,
)

pytestmark = pytest.mark.integration
PG_PORT = PORT_BASE + 51
BASE = PORT_BASE + 60  # weaviate at BASE..BASE+5, the gateway at BASE+7
METRICS_PORTS = {"w1": BASE + 8, "w2": BASE + 9}  # each worker's --metrics-port
ADMIN_KEY = "hf_" + "w" * 43
LEASE_S = 4.0
MAX_ATTEMPTS = 2
BATCH = 8
SECRETS = {
    "HOLDFAST_WEAVIATE__API_KEY": "workers-test-weaviate-key",
    "HOLDFAST_INGESTION__ID_KEY": "workers-test-id-key-0123456789abcdef0123",
}
GROUPS = ["killed", "clean", "poison", "fine", "bulk", "small", "counted"]


def _settings(home: Path) -> Settings:
    return Settings(
        home=home,
        weaviate=single_weaviate(BASE, SECRETS["HOLDFAST_WEAVIATE__API_KEY"]),
        ollama={"managed": False, "port": BASE + 6},
        gateway={"port": BASE + 7},
        redaction={"enabled": False},
        ingestion={
            "run_in_gateway": False,
            "lease_s": LEASE_S,
            "max_attempts": MAX_ATTEMPTS,
            "batch_files": BATCH,
        },
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerStack]:
    root = tmp_path_factory.mktemp("workers")
    settings = _settings(root / "gateway")
    prepare(settings)
    with running_postgres(PG_PORT) as dsn:
        db_upgrade(dsn)
        weaviate = ProcessSupervisor(settings.run_dir / "wv", settings.logs_dir)
        gateway = ProcessSupervisor(settings.run_dir, settings.logs_dir)
        built = WorkerStack(settings, dsn, root, SECRETS, metrics_ports=METRICS_PORTS)
        try:
            weaviate.start(stack.weaviate_spec(settings))
            start_gateway(
                gateway,
                settings,
                {
                    **SECRETS,
                    "HOLDFAST_DATABASE__URL": dsn,
                    "HOLDFAST_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
                },
            )
            for principal in ("alice", "bob", "carol", "dave"):
                made = httpx.post(
                    f"{built.url}/admin/keys",
                    json={"name": principal, "groups": GROUPS, "roles": ["ingest", "query"]},
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                    timeout=30,
                )
                assert made.status_code == 201, made.text
                built.keys[principal] = made.json()["key"]
            for name in ("w1", "w2"):
                built.start_worker(name)
            for name in ("w1", "w2"):
                built.wait_ready(name)
            yield built
        except StartupError as exc:
            pytest.fail(f"{exc}")
        finally:
            built.kill_workers()
            gateway.stop("gateway")
            weaviate.stop("weaviate")


def _store(settings: Settings) -> Any:
    from gateway.container import build_store

    store = build_store(settings)
    store.warm_up()
    return store


def test_each_worker_serves_metrics_of_the_files_it_ingested(
    cluster: WorkerStack, tmp_path: Path
) -> None:
    """Runs first: both workers are fresh, so their counters hold this job's files only."""
    files = text_files(tmp_path / "counted", 5)
    job_id = cluster.upload("carol", files, "counted")
    done = wait_job(cluster.dsn, job_id)
    assert done["status"] == "succeeded" and done["done"] == len(files)
    chunks = sum(f["chunks"] for f in job_files(cluster.dsn, job_id))
    seen = [cluster.metrics(name) for name in ("w1", "w2")]
    indexed = 'holdfast_ingest_files_total{status="indexed"}'
    assert sum(m.get(indexed, 0.0) for m in seen) == len(files), seen
    assert sum(m["holdfast_ingest_chunks_written_total"] for m in seen) == chunks > 0
    # the queue gauge reads the shared job store: every worker reports the same counts
    succeeded = [m['holdfast_ingest_jobs{state="succeeded"}'] for m in seen]
    assert succeeded[0] == succeeded[1] >= 1


def test_a_worker_killed_mid_job_is_replaced_after_its_lease_and_nothing_is_lost_or_doubled(
    cluster: WorkerStack, tmp_path: Path
) -> None:
    files = text_files(tmp_path / "notes", 6 * BATCH)
    job_id = cluster.upload("alice", files, "killed")
    clean_id = cluster.upload("bob", files, "clean")  # the same files, never interrupted
    deadline = time.monotonic() + 180
    victim = None
    while time.monotonic() < deadline:
        row = job_row(cluster.dsn, job_id)
        victim = cluster.holder(job_id)
        if row["done"] >= 2 * BATCH and victim is not None:
            break
        time.sleep(0.02)
    assert victim is not None, cluster.log_tail("w1") + cluster.log_tail("w2")
    cluster.workers[victim].send_signal(signal.SIGKILL)
    cluster.workers[victim].wait()
    killed_at = time.monotonic()
    # A job is leased batch by batch: the victim may have released it between two batches just
    # before the kill (a CI run saw the survivor claim it at once). Only a lease that still names
    # the dead worker must run out before anyone else takes the job.
    held_by_the_dead = cluster.holder(job_id) == victim
    survivor = "w2" if victim == "w1" else "w1"
    while (holder := cluster.holder(job_id)) != survivor:
        assert job_row(cluster.dsn, job_id)["status"] not in FINAL
        assert time.monotonic() - killed_at < 3 * LEASE_S, "nobody took the job over"
        time.sleep(0.02)
    took_over_after = time.monotonic() - killed_at
    print(
        f"\nkilled {victim} (lease still its own: {held_by_the_dead}); {survivor} took the job "
        f"over after {took_over_after:.2f} s"
    )
    if held_by_the_dead:
        # renewed every lease/3, so it ran out 2/3 lease after the kill, or earlier by as much as
        # a heartbeat was late under load; never while it was fresh
        assert took_over_after >= LEASE_S / 3, took_over_after
    assert holder == survivor
    cluster.start_worker(victim)
    done = wait_job(cluster.dsn, job_id)
    assert done["status"] == "succeeded" and done["done"] == len(files)
    assert wait_job(cluster.dsn, clean_id)["status"] == "succeeded"
    clean = {f["source"]: f["chunks"] for f in job_files(cluster.dsn, clean_id)}
    assert all(f["status"] == "indexed" for f in job_files(cluster.dsn, clean_id))
    store = _store(cluster.settings)
    try:
        killed_docs = {f["source"]: f["doc_id"] for f in job_files(cluster.dsn, job_id)}
        stored = {source: store.count_document(doc) for source, doc in killed_docs.items()}
        ids = [cid for cid, _, _ in store.chunk_texts()]
    finally:
        store.close()
    assert stored == clean, "every document of the killed job has exactly a clean run's chunks"
    assert len(ids) == len(set(ids)), "no chunk id twice"
    assert sum(clean.values()) >= len(files)


def test_a_job_that_keeps_killing_its_worker_fails_after_max_attempts_and_blocks_nothing(
    cluster: WorkerStack, tmp_path: Path
) -> None:
    slow = tmp_path / "huge-log.md"
    paragraph = "Entry {n}: the pump station logged pressure readings and valve states. "
    slow.write_text(
        "# Huge log\n\n" + "\n\n".join(paragraph.format(n=n) * 4 for n in range(20_000)),
        encoding="utf-8",
    )
    poison = cluster.upload("carol", [slow], "poison")
    others = cluster.upload("dave", text_files(tmp_path / "fine", 2 * BATCH), "fine")
    kills: list[str] = []
    deadline = time.monotonic() + 180
    while job_row(cluster.dsn, poison)["status"] not in FINAL:
        assert time.monotonic() < deadline, job_row(cluster.dsn, poison)
        victim = cluster.holder(poison)
        if victim is not None:  # an OOM kill, as a poison file would cause
            cluster.workers[victim].send_signal(signal.SIGKILL)
            cluster.workers[victim].wait()
            kills.append(victim)
            cluster.start_worker(victim)
        time.sleep(0.02)
    row = job_row(cluster.dsn, poison)
    assert row["status"] == "failed" and len(kills) == MAX_ATTEMPTS, (row, kills)
    [given_up] = job_files(cluster.dsn, poison)
    assert given_up["status"] == "failed"
    assert given_up["reason"].startswith(f"gave up after {MAX_ATTEMPTS} attempts: worker ")
    assert "stopped renewing its lease" in given_up["reason"]
    assert wait_job(cluster.dsn, others)["status"] == "succeeded"
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM job_uploads WHERE job_id = %s", (poison,))
        assert left.fetchone() == (0,), "a given-up job's bytes are dropped"


def test_a_one_file_upload_finishes_within_two_batches_of_a_running_500_file_job(
    cluster: WorkerStack, tmp_path: Path
) -> None:
    """One worker (the hardest case: no idle worker to pick the small job up at once)."""
    cluster.wait_ready("w2")  # restarted by the test before: a SIGTERM while it imports is -15
    stopped = cluster.workers.pop("w2")
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(60) == 0, cluster.log_tail("w2")
    big = cluster.upload("alice", text_files(tmp_path / "bulk", 500), "bulk")
    ends: list[float] = []  # when each of the big job's batches was recorded
    last = 0
    while len(ends) < 5:
        done = job_row(cluster.dsn, big)["done"]
        if done // BATCH > last:
            last = done // BATCH
            ends.append(time.monotonic())
        time.sleep(0.02)
    batch_s = (ends[-1] - ends[1]) / (len(ends) - 2)
    started = time.monotonic()
    small = cluster.upload("bob", text_files(tmp_path / "one", 1), "small")
    uploaded = time.monotonic()
    while job_row(cluster.dsn, small)["status"] not in FINAL:
        time.sleep(0.02)
    waited = time.monotonic() - uploaded
    row = job_row(cluster.dsn, big)
    report = (
        f"batch of {BATCH} files: {batch_s:.2f} s; 1-file job done {waited:.2f} s after its "
        f"upload was accepted (upload took {uploaded - started:.2f} s), "
        f"{waited / batch_s:.2f} batches; big job at {row['done']}/500"
    )
    print(report)
    (Path(os.environ.get("HOLDFAST_FAIRNESS_REPORT", tmp_path / "fairness.txt"))).write_text(
        report + "\n"
    )
    assert job_row(cluster.dsn, small)["status"] == "succeeded"
    assert row["status"] == "running" and row["done"] < 500, "the big job was still running"
    assert waited <= 2 * batch_s, report
