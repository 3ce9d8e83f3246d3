"""Helpers for tests that run Holdfast as several processes on one PostgreSQL: `holdfast db
upgrade`, gateway processes started by the code `holdfast up` uses, `holdfast worker` processes
with homes of their own (as on other hosts), and job progress read straight from PostgreSQL
(below the API's rate limit)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from gateway.local import stack
from gateway.local.processes import ProcessSupervisor
from gateway.models.config import ensure_models_file
from gateway.settings import Settings

HOLDFAST = str(Path(sys.executable).with_name("holdfast"))
FINAL = {"succeeded", "partial", "failed"}


def prepare(settings: Settings) -> None:
    """The folders and models file a gateway or worker home needs before its first start."""
    for folder in (settings.state_dir, settings.logs_dir, settings.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    ensure_models_file(settings)


def single_weaviate(base: int, api_key: str) -> dict[str, Any]:
    """``weaviate`` settings for one node whose six ports start at ``base`` (http, grpc,
    gossip, data, raft, raft rpc)."""
    names = ("http_port", "grpc_port", "gossip_port", "data_port", "raft_port", "raft_rpc_port")
    return {**{name: base + i for i, name in enumerate(names)}, "api_key": api_key}


def db_upgrade(dsn: str) -> None:
    upgraded = subprocess.run(
        [HOLDFAST, "db", "upgrade"],
        env={**os.environ, "HOLDFAST_DATABASE__URL": dsn},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgraded.returncode == 0, upgraded.stderr


def start_gateway(
    supervisor: ProcessSupervisor,
    settings: Settings,
    env: dict[str, str],
    startup_timeout_s: float = 180,
) -> None:
    """Start ``stack.gateway_spec(settings)`` with ``env`` (secrets, database URL) on top and
    wait until it answers /healthz."""
    spec = stack.gateway_spec(settings)
    supervisor.start(
        dataclasses.replace(
            spec,
            env={**spec.env, **env},
            health_url=f"{settings.gateway.base_url}/healthz",
            startup_timeout_s=startup_timeout_s,
        )
    )


def job_row(dsn: str, job_id: str) -> dict[str, Any]:
    """status, lease_owner, attempts, last_error, done (files not pending) and files of a job."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(
            "SELECT j.status, j.lease_owner, j.attempts, j.last_error, "
            "count(*) FILTER (WHERE f.status <> 'pending') AS done, count(f.*) AS files "
            "FROM jobs j JOIN job_files f USING (job_id) WHERE j.job_id = %s "
            "GROUP BY j.job_id",
            (job_id,),
        )
        names = [d.name for d in cur.description or []]
        found = cur.fetchone()
    assert found is not None, job_id
    return dict(zip(names, found, strict=True))


def job_files(dsn: str, job_id: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(
            "SELECT source, status, doc_id, chunks, reason FROM job_files "
            "WHERE job_id = %s ORDER BY idx",
            (job_id,),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def wait_job(dsn: str, job_id: str, timeout_s: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = job_row(dsn, job_id)
        if row["status"] in FINAL:
            return row
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end in {timeout_s} s: {job_row(dsn, job_id)}")


@dataclass
class WorkerStack:
    """An enqueue-only gateway's settings, the shared database, and the `holdfast worker`
    processes started on them; ``secrets`` go to every worker in its environment."""

    settings: Settings
    dsn: str
    root: Path
    secrets: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # a worker's --metrics-port

    @property
    def url(self) -> str:
        return self.settings.gateway.base_url

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """A `holdfast worker` with a home of its own (as on another host): same settings
        file, the database URL and secrets in its environment."""
        home = self.root / f"worker-{name}"
        settings = self.settings.model_copy(update={"home": home})
        prepare(settings)
        config = home / "holdfast.yaml"
        dumped = settings.model_dump(
            mode="json",
            exclude={"weaviate": {"api_key"}, "ingestion": {"id_key"}, "database": {"url"}},
        )
        config.write_text(json.dumps(dumped))
        env = {
            **os.environ,
            **self.secrets,
            "HOLDFAST_CONFIG": str(config),
            "HOLDFAST_HOME": str(home),
            "HOLDFAST_DATABASE__URL": self.dsn,
            "PYTHONUNBUFFERED": "1",  # its start line shows in the log at once
        }
        log = (home / "worker.log").open("ab")
        metrics = self.metrics_ports.get(name)
        options = ["--metrics-port", str(metrics)] if metrics else []
        proc = subprocess.Popen(
            [HOLDFAST, "worker", "--poll", "0.2", *options], env=env, stdout=log, stderr=log
        )
        self.workers[name] = proc
        return proc

    def wait_ready(self, name: str, timeout_s: float = 240.0) -> None:
        """Until the worker process started last under ``name`` has loaded its models and
        started its loops: its start line names its pid in each loop's id (host/pid/nonce); an
        earlier process's line in the same log does not count."""
        deadline = time.monotonic() + timeout_s
        started = re.compile(rf"holdfast worker: .*/{self.workers[name].pid}/")
        while not started.search(self.log_tail(name)):
            assert self.workers[name].poll() is None, self.log_tail(name)
            assert time.monotonic() < deadline, self.log_tail(name)
            time.sleep(0.2)

    def log_tail(self, name: str) -> str:
        return (self.root / f"worker-{name}" / "worker.log").read_text()[-3000:]

    def holder(self, job_id: str) -> str | None:
        """The name of the worker process whose lease is on the job now."""
        owner = job_row(self.dsn, job_id)["lease_owner"]
        if not owner:
            return None
        pid = int(owner.split("/")[1])
        return next((n for n, p in self.workers.items() if p.pid == pid), None)

    def upload(self, principal: str, files: list[Path], group: str, url: str = "") -> str:
        """POST the files as one job (to ``url``, this stack's gateway unless given)."""
        with httpx.Client(timeout=300) as client:
            response = client.post(
                f"{url or self.url}/v1/documents",
                files=[("files", (p.name, p.read_bytes(), "text/markdown")) for p in files],
                data={"access_groups": group},
                headers={"Authorization": f"Bearer {self.keys[principal]}"},
            )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    def metrics(self, name: str) -> dict[str, float]:
        """Worker ``name``'s Prometheus samples, ``name{labels}`` to value."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"http://127.0.0.1:{self.metrics_ports[name]}/metrics", timeout=10).text
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def kill_workers(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
