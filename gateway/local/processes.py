"""Start, watch and stop local service processes, tracked by PID files under ``run_dir``.

``stop`` only ever signals a PID whose command line still matches what was started, so a PID
recycled by the kernel after a crash is never killed by mistake.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from services.errors import HoldfastError


class _NotHealthy(Exception):
    """The health URL did not answer 200 yet (the message says what it answered)."""


class StartupError(HoldfastError):
    """A component did not become healthy; carries its log tail and a hint for the operator."""

    code, title = "startup_failed", "A component failed to start"

    def __init__(self, component: str, reason: str, log_tail: str, hint: str) -> None:
        super().__init__(f"{component} failed to start: {reason}")
        self.component = component
        self.reason = reason
        self.log_tail = log_tail
        self.hint = hint


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    health_url: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    startup_timeout_s: float = 60.0
    hint: str = ""


@dataclass(frozen=True, slots=True)
class ProcessState:
    name: str
    pid: int | None
    running: bool


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie child of ours is reaped and counts as gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    if state == "Z":  # a zombie child of ours: reap it
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [part.decode(errors="replace") for part in fh.read().split(b"\0") if part]
    except FileNotFoundError:
        return []


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class ProcessSupervisor:
    def __init__(self, run_dir: Path, logs_dir: Path) -> None:
        self._run_dir = run_dir
        self._logs_dir = logs_dir

    def log_path(self, name: str) -> Path:
        return self._logs_dir / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self._run_dir / f"{name}.pid"

    def _recorded(self, name: str) -> tuple[int, list[str]] | None:
        try:
            record = json.loads(self._pid_path(name).read_text())
            return int(record["pid"]), list(record["argv"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def state(self, name: str) -> ProcessState:
        record = self._recorded(name)
        if record is None:
            return ProcessState(name, None, False)
        pid, argv = record
        running = is_alive(pid) and _cmdline(pid)[: len(argv)] == argv
        return ProcessState(name, pid, running)

    def start(self, spec: ProcessSpec) -> ProcessState:
        """Start the process unless the recorded one is still running; then wait for health."""
        current = self.state(spec.name)
        if current.running:
            self.wait_healthy(spec, current.pid)
            return current
        self._run_dir.mkdir(parents=True, exist_ok=True)
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path(spec.name).open("ab")
        try:
            proc = subprocess.Popen(
                list(spec.argv),
                env=dict(spec.env),
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: `down` stops its children too
            )
        except OSError as exc:
            raise StartupError(spec.name, exc.strerror or str(exc), "", spec.hint) from exc
        finally:
            log.close()
        self._pid_path(spec.name).write_text(json.dumps({"pid": proc.pid, "argv": list(spec.argv)}))
        self.wait_healthy(spec, proc.pid)
        return ProcessState(spec.name, proc.pid, True)

    def wait_healthy(self, spec: ProcessSpec, pid: int | None) -> None:
        """Ask the health URL every half second until it answers 200; fail at once if the
        process exits, or with the last answer when ``startup_timeout_s`` has passed."""

        def probe() -> None:
            if pid is not None and not is_alive(pid):
                raise StartupError(
                    spec.name, "process exited", tail(self.log_path(spec.name)), spec.hint
                )
            try:
                response = httpx.get(spec.health_url, timeout=2.0)
            except httpx.HTTPError as exc:
                raise _NotHealthy(f"{type(exc).__name__} on {spec.health_url}") from exc
            if response.status_code != 200:
                raise _NotHealthy(f"HTTP {response.status_code} from {spec.health_url}")

        polling = Retrying(
            stop=stop_after_delay(spec.startup_timeout_s),
            wait=wait_fixed(0.5),
            retry=retry_if_exception_type(_NotHealthy),
            reraise=True,
        )
        try:
            polling(probe)
        except _NotHealthy as exc:
            raise StartupError(
                spec.name,
                f"not healthy after {spec.startup_timeout_s:.0f}s ({exc})",
                tail(self.log_path(spec.name)),
                spec.hint,
            ) from None

    def stop(self, name: str, timeout_s: float = 20.0) -> bool:
        """Stop what we started under ``name``; True if something was running."""
        state = self.state(name)
        self._pid_path(name).unlink(missing_ok=True)
        if not state.running or state.pid is None:
            return False
        pid = state.pid
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                return True
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if not is_alive(pid):
                    return True
                time.sleep(0.1)
        return True
