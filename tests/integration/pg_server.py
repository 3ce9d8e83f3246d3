"""A real PostgreSQL server for integration tests: Debian's binaries (scripts/install-postgres.sh),
a throwaway cluster under /tmp started with pg_ctl (as the `postgres` user when run as root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def pg_bin(name: str) -> str:
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: run scripts/install-postgres.sh")
    return found


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def running_postgres(port: int) -> Iterator[str]:
    """Start a cluster on 127.0.0.1:``port``; yields its URL (user holdfast, trust auth)."""
    root = Path(tempfile.mkdtemp(prefix="holdfast-pg-", dir="/tmp"))
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_postgres([pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "holdfast"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1"
    log = str(root / "pg.log")
    subprocess.run(
        _as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", log, "-w", "start"]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://holdfast@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
