"""Scale-out on loopback (issue 18, first acceptance item): one real PostgreSQL, a three-node
Weaviate cluster (replication factor 3, QUORUM writes and reads), two gateway processes that only
enqueue (ingestion.run_in_gateway: false; A enters the cluster through node 0, B through node 1)
and two `holdfast worker` processes.

A key created through A's admin API authenticates on B; a job uploaded on A is followed on B to
its end; the audit log, read on either gateway, holds both gateways' requests. A worker SIGKILLed
mid-job is replaced by the other once its lease has run out, and the index then holds exactly a
clean run's chunks for those files, with no chunk id twice.

Job leases are read straight from PostgreSQL (every 20 ms, below the API's rate limit).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.container import build_store
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
    start_gateway,
    wait_job,
)
from tests.integration.weaviate_cluster import API_KEY, WeaviateCluster, running_weaviate_cluster

pytestmark = pytest.mark.integration
PG_PORT = PORT_BASE + 100
WEAVIATE_BASE = PORT_BASE + 102  # three nodes, six ports each: +102 .. +119
OLLAMA_PORT = PORT_BASE + 120  # nothing listens there: no test asks for an answer
GATEWAY_PORTS = {"a": PORT_BASE + 121, "b": PORT_BASE + 122}
ADMIN_KEY = "hf_" + "s" * 43
LEASE_S = 4.0
BATCH = 4
SECRETS = {
    "HOLDFAST_WEAVIATE__API_KEY": API_KEY,
    "HOLDFAST_INGESTION__ID_KEY": "scale-out-test-id-key-0123456789abcdef012",
}
GROUPS = ["handbook", "killed", "clean"]


def _settings(home: Path, cluster: WeaviateCluster, entry: int, gateway_port: int) -> Settings:
    return Settings(
        home=home,
        weaviate=cluster.settings_overrides(
            entry=entry,
            replication_factor=3,
            write_consistency="QUORUM",
            read_consistency="QUORUM",
        ),
        ollama={"managed": False, "port": OLLAMA_PORT},
        gateway={"port": gateway_port},
        redaction={"enabled": False},
        ingestion={"run_in_gateway": False, "lease_s": LEASE_S, "batch_files": BATCH},
    )


@dataclass
class ScaleOut:
    """Gateway A's settings and the workers (``stack``), gateway B's settings, the cluster."""

    stack: WorkerStack
    settings_b: Settings
    cluster: WeaviateCluster

    @property
    def url_a(self) -> str:
        return self.stack.url

    @property
    def url_b(self) -> str:
        return self.settings_b.gateway.base_url


@pytest.fixture(scope="module")
def scale_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleOut]:
    root = tmp_path_factory.mktemp("scale-out")
    with (
        running_postgres(PG_PORT) as dsn,
        running_weaviate_cluster(WEAVIATE_BASE, root / "weaviate", nodes=3) as cluster,
    ):
        db_upgrade(dsn)
        settings_a = _settings(root / "a", cluster, 0, GATEWAY_PORTS["a"])
        settings_b = _settings(root / "b", cluster, 1, GATEWAY_PORTS["b"])
        gateways = []
        workers = WorkerStack(settings_a, dsn, root, SECRETS)
        env = {**SECRETS, "HOLDFAST_DATABASE__URL": dsn, "HOLDFAST_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
        try:
            for settings in (settings_a, settings_b):
                prepare(settings)
                gateways.append(ProcessSupervisor(settings.run_dir, settings.logs_dir))
                start_gateway(gateways[-1], settings, env)
            for name in ("w1", "w2"):
                workers.start_worker(name)
            for name in ("w1", "w2"):
                workers.wait_ready(name)
            yield ScaleOut(workers, settings_b, cluster)
        except StartupError as exc:
            pytest.fail(f"{exc}")
        finally:
            workers.kill_workers()
            for supervisor in gateways:
                supervisor.stop("gateway")


def _follow(url: str, key: str, job_id: str, seen: list[str], timeout_s: float = 180) -> Any:
    """Poll GET /v1/jobs/{job_id} on ``url`` until the job ends; ``seen`` gets the request ids."""
    deadline, job = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{url}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        assert response.status_code == 200, response.text
        seen.append(response.headers["x-request-id"])
        job = response.json()
        if job["status"] in FINAL:
            return job
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s: {job}")


def test_a_key_and_a_job_made_on_gateway_a_are_followed_on_b_and_both_are_audited(
    scale_out: ScaleOut, tmp_path: Path
) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    made = httpx.post(
        f"{scale_out.url_a}/admin/keys",
        json={"name": "uploader", "groups": GROUPS, "roles": ["ingest", "query"]},
        headers=admin,
        timeout=30,
    )
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    scale_out.stack.keys["uploader"] = key
    on_a = [made.headers["x-request-id"]]
    note = tmp_path / "leave.md"
    note.write_text("Annual leave is twenty-five days a year.\n\n" * 20, encoding="utf-8")
    with httpx.Client(timeout=60) as client:
        queued = client.post(
            f"{scale_out.url_a}/v1/documents",
            files=[("files", (note.name, note.read_bytes(), "text/markdown"))],
            data={"access_groups": "handbook"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert queued.status_code == 202, queued.text
    on_a.append(queued.headers["x-request-id"])
    on_b: list[str] = []
    job = _follow(scale_out.url_b, key, queued.json()["job_id"], on_b)  # A's key, read on B
    assert job["status"] == "succeeded", job
    assert job["files"][0]["status"] == "indexed" and job["chunks_written"] >= 1
    ids: dict[str, set[str]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name, url in (("a", scale_out.url_a), ("b", scale_out.url_b)):
            page = httpx.get(f"{url}/admin/audit", params={"limit": 500}, headers=admin, timeout=30)
            assert page.status_code == 200, page.text
            ids[name] = {r["request_id"] for r in page.json()["records"]}
        if all(set(on_a) | set(on_b) <= found for found in ids.values()):
            break
        time.sleep(0.5)
    for name, found in ids.items():
        assert set(on_a) <= found, f"gateway A's requests missing from the log read on {name}"
        assert set(on_b) <= found, f"gateway B's requests missing from the log read on {name}"


def test_a_worker_killed_mid_job_is_replaced_after_its_lease_and_the_index_is_a_clean_runs(
    scale_out: ScaleOut, tmp_path: Path
) -> None:
    workers, dsn = scale_out.stack, scale_out.stack.dsn
    key = workers.keys["uploader"]  # made by the first test
    files = text_files(tmp_path / "notes", 5 * BATCH)
    job_id = workers.upload("uploader", files, "killed", url=scale_out.url_a)
    deadline, victim = time.monotonic() + 180, None
    while time.monotonic() < deadline:
        row = job_row(dsn, job_id)
        assert row["status"] not in FINAL, f"the job ended before a worker could be killed: {row}"
        victim = workers.holder(job_id)
        if row["done"] >= BATCH and victim is not None:
            break
        time.sleep(0.02)
    assert victim is not None, workers.log_tail("w1") + workers.log_tail("w2")
    workers.workers[victim].send_signal(signal.SIGKILL)
    workers.workers[victim].wait()
    killed_at = time.monotonic()
    survivor = "w2" if victim == "w1" else "w1"
    while workers.holder(job_id) != survivor:
        assert job_row(dsn, job_id)["status"] not in FINAL
        assert time.monotonic() - killed_at < 3 * LEASE_S, "nobody took the job over"
        time.sleep(0.02)
    took_over_after = time.monotonic() - killed_at
    # the lease was renewed at most lease/3 before the kill: it ran out 2/3 lease later or more
    assert took_over_after >= LEASE_S * 2 / 3 - 0.3, took_over_after
    followed = _follow(scale_out.url_b, key, job_id, [])
    assert followed["status"] == "succeeded", followed
    assert job_row(dsn, job_id)["done"] == len(files)
    # the clean run: the same files under another group (so other document ids), uploaded on B
    # and run by the survivor alone
    clean_id = workers.upload("uploader", files, "clean", url=scale_out.url_b)
    assert wait_job(dsn, clean_id)["status"] == "succeeded"
    clean = {f["source"]: f["chunks"] for f in job_files(dsn, clean_id)}
    assert all(f["status"] == "indexed" for f in job_files(dsn, clean_id))
    store = build_store(scale_out.settings_b)
    store.warm_up()
    try:
        killed_docs = {f["source"]: f["doc_id"] for f in job_files(dsn, job_id)}
        stored = {source: store.count_document(doc) for source, doc in killed_docs.items()}
        ids = [chunk_id for chunk_id, _, _ in store.chunk_texts()]
    finally:
        store.close()
    assert stored == clean, "every document of the killed job has exactly a clean run's chunks"
    assert sum(clean.values()) >= len(files)
    assert len(ids) == len(set(ids)), "no chunk id twice"
    assert len(ids) >= 2 * sum(clean.values()), "both runs' chunks are in the index"
