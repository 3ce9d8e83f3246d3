"""The processes of the scale-out benchmark (``benchmarks.scale_out``): a Weaviate, gateways and
`holdfast worker` processes on one PostgreSQL, each in a session of its own so that the CPU every
role spends can be read, and stopped by its own id."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

HOLDFAST = str(Path(sys.executable).with_name("holdfast"))
ADMIN_KEY = "hf_" + "s" * 43  # the bootstrap admin key every process of the run is given
SECRETS_ENV = {
    "HOLDFAST_WEAVIATE__API_KEY": "scale-out-benchmark-weaviate-key",
    "HOLDFAST_INGESTION__ID_KEY": "scale-out-benchmark-id-key-0123456789abcdef",
    "HOLDFAST_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
}
GROUP = "scale"


# --- processes and their CPU --------------------------------------------------------------------


def _sessions_cpu(sids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of every process in each role's sessions (children included)."""
    role_of = {sid: role for role, ids in sids.items() for sid in ids}
    spent = dict.fromkeys(sids, 0.0)
    for proc in psutil.process_iter():
        try:
            role = role_of.get(os.getsid(proc.pid))
            if role is not None:
                t = proc.cpu_times()
                spent[role] += t.user + t.system
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return spent


def _postgres_cpu(port: int) -> float:
    """CPU seconds so far of the postmaster listening on ``port`` and its backends."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and "-p" in cmd and str(port) in cmd:
            total = 0.0
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    continue
            return total
    return 0.0


class Meter:
    """CPU spent by role, and the whole machine's busy share, between ``start`` and ``stop``."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self.cpu_s: dict[str, float] = {}
        self.machine_busy = 0.0
        self._t0: Any = None

    def _now(self) -> tuple[dict[str, float], Any]:
        roles = _sessions_cpu(self._stack.sessions())
        roles["postgres"] = _postgres_cpu(self._stack.pg_port)
        return roles, psutil.cpu_times()

    def start(self) -> None:
        self._t0 = self._now()

    def stop(self) -> None:
        (before, m0), (after, m1) = self._t0, self._now()
        for role, value in after.items():
            self.cpu_s[role] = self.cpu_s.get(role, 0.0) + value - before.get(role, 0.0)
        idle = (m1.idle + getattr(m1, "iowait", 0)) - (m0.idle + getattr(m0, "iowait", 0))
        total = sum(m1) - sum(m0)
        self.machine_busy = round(1 - idle / total, 3) if total else 0.0


class Stack:
    """One PostgreSQL, one Weaviate, and the gateways and workers started on them."""

    def __init__(self, home: Path, dsn: str, port_base: int) -> None:
        from gateway.local.processes import ProcessSupervisor
        from gateway.settings import Settings

        self.home, self.dsn, self.pg_port, self.base = home, dsn, port_base, port_base
        b = port_base
        self.settings = Settings(
            home=home / "weaviate",
            weaviate={
                "http_port": b + 1,
                "grpc_port": b + 2,
                "gossip_port": b + 3,
                "data_port": b + 4,
                "raft_port": b + 5,
                "raft_rpc_port": b + 6,
            },
            ollama={"managed": False, "port": b + 7},
            limits={"rate_per_minute": 1_000_000, "burst": 100_000},
            database={"url": dsn},
        )
        self._weaviate = ProcessSupervisor(home / "weaviate" / "run", home / "weaviate" / "logs")
        self.gateways: dict[str, tuple[Any, int]] = {}  # name -> (supervisor, pid)
        self._workers: dict[str, subprocess.Popen[bytes]] = {}
        self._weaviate_pid = 0

    def start_weaviate(self) -> None:
        from gateway.local import stack

        self._weaviate_pid = self._weaviate.start(stack.weaviate_spec(self.settings)).pid or 0

    def _role_settings(self, name: str, **update: Any) -> Any:
        from gateway.models.config import ensure_models_file

        home = self.home / name
        shutil.rmtree(home, ignore_errors=True)
        settings = self.settings.model_copy(update={"home": home})
        for section, values in update.items():
            block = getattr(settings, section).model_copy(update=values)
            settings = settings.model_copy(update={section: block})
        for folder in (settings.state_dir, settings.logs_dir, settings.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        ensure_models_file(settings)
        return settings

    def start_gateway(self, name: str, port: int, collection: str, run_jobs: bool) -> str:
        from gateway.local import stack
        from gateway.local.processes import ProcessSupervisor

        settings = self._role_settings(
            name,
            gateway={"port": port},
            weaviate={"collection": collection},
            ingestion={"run_in_gateway": run_jobs},
        )
        supervisor = ProcessSupervisor(settings.run_dir, settings.logs_dir)
        spec = stack.gateway_spec(settings)
        state = supervisor.start(
            dataclasses.replace(
                spec,
                health_url=f"{settings.gateway.base_url}/healthz",  # no model server here
                startup_timeout_s=240,
            )
        )
        self.gateways[name] = (supervisor, state.pid or 0)
        return settings.gateway.base_url

    def start_worker(self, name: str, collection: str) -> None:
        """`holdfast worker` with this run's settings: the gateway's settings snapshot (JSON is
        YAML) as its holdfast.yaml, secrets from the environment, as a gateway gets them."""
        from gateway.local import stack

        settings = self._role_settings(name, weaviate={"collection": collection})
        snapshot = stack.gateway_spec(settings).env["HOLDFAST_EFFECTIVE_SETTINGS"]
        env = {
            **os.environ,
            "HOLDFAST_HOME": str(settings.home),
            "HOLDFAST_CONFIG": snapshot,
            "PYTHONUNBUFFERED": "1",
        }
        log = (settings.logs_dir / "worker.log").open("ab")
        self._workers[name] = subprocess.Popen(
            [HOLDFAST, "worker"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def wait_workers(self, timeout_s: float = 240) -> None:
        """Until every worker has printed its start line (its components are warm)."""
        deadline = time.monotonic() + timeout_s
        for name, proc in self._workers.items():
            log = self.home / name / "logs" / "worker.log"
            while "holdfast worker:" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise RuntimeError(f"worker {name} did not start (exit {proc.poll()}):\n{tail}")
                time.sleep(0.5)

    def sessions(self) -> dict[str, list[int]]:
        return {
            "gateways": [pid for _, pid in self.gateways.values()],
            "workers": [p.pid for p in self._workers.values()],
            "weaviate": [self._weaviate_pid] if self._weaviate_pid else [],
        }

    def stop_workers(self) -> None:
        """Stop every worker: SIGTERM to its session, SIGKILL after 30 s."""
        for proc in self._workers.values():
            _signal_group(proc.pid, signal.SIGTERM)
        for proc in self._workers.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self._workers.clear()

    def stop_gateway(self, name: str) -> None:
        supervisor, _ = self.gateways.pop(name)
        supervisor.stop("gateway")

    def job_runners(self) -> list[int]:
        """The pids that run jobs now: the workers, else the gateways."""
        return [p.pid for p in self._workers.values()] or [pid for _, pid in self.gateways.values()]

    def stop_all(self) -> None:
        self.stop_workers()
        for name in list(self.gateways):
            self.stop_gateway(name)
        self._weaviate.stop("weaviate")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # only the session started for that worker
        os.killpg(pid, sig)


def db_upgrade(dsn: str) -> None:
    done = subprocess.run(
        [HOLDFAST, "db", "upgrade"],
        env={**os.environ, "HOLDFAST_DATABASE__URL": dsn},
        capture_output=True,
        text=True,
        timeout=180,
    )
    if done.returncode:
        raise RuntimeError(f"holdfast db upgrade failed: {done.stderr}")


def make_key(url: str) -> str:
    """An ingest+query key for the benchmark's group, through the admin API (kept in PG, so
    every gateway of the run knows it)."""
    made = httpx.post(
        f"{url}/admin/keys",
        json={"name": f"scale-{os.getpid()}", "groups": [GROUP], "roles": ["ingest", "query"]},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    made.raise_for_status()
    return str(made.json()["key"])
