"""A throwaway redis-server (Debian's, scripts/install-redis.sh) on loopback: no persistence, its
files in a temp dir, stopped by the caller."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )


def start_redis(port: int, workdir: Path, *, timeout_s: float = 10.0) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:``port`` and wait until it answers PING."""
    binary = redis_binary()
    assert binary, "redis-server missing: run scripts/install-redis.sh (make setup)"
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "redis.log").open("ab")
    options = {"port": str(port), "bind": "127.0.0.1", "dir": str(workdir), "save": ""}
    argv = [binary, *(item for name, value in options.items() for item in (f"--{name}", value))]
    process = subprocess.Popen(
        [*argv, "--appendonly", "no", "--protected-mode", "yes"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited ({process.returncode}); see {workdir}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process
        except OSError:
            pass
        time.sleep(0.05)
    stop_redis(process)
    raise RuntimeError(f"redis-server did not answer on port {port} within {timeout_s} s")


def stop_redis(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
