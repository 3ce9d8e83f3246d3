"""Holdfast's images built the way `holdfast images build` builds them, and podman to run them,
for the integration tests that need both (test_images.py, test_chart_podman.py).

Podman as it works on this machine: root, runc, cgroupfs and no default ulimits
(CONTAINERS_CONF), its own storage and runroot for each test (the runroot under /tmp: podman
refuses one longer than 50 characters, and pytest's tmp_path grows with its run count)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle import wheelhouse
from gateway.bundle.wheelhouse import Target
from gateway.images.build import BuildOptions

REPO = Path(__file__).resolve().parents[2]
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\ncgroup_manager = "cgroupfs"\n'
BUILD_TOOLS = ("mmdebstrap", "umoci")
# catatonit: podman builds the infra ("pause") image of a pod from it, locally
RUN_TOOLS = ("podman", "runc", "catatonit")


def apt_install(caller: str, *packages: str) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts/apt-install.sh"), "--for", caller, *packages],
        check=True,
        timeout=900,
    )


def head_revision() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()


def ensure_wheel_cache() -> None:
    """Fill the wheel cache once, so that `images build --no-download` only reads it."""
    cache = BuildOptions(REPO, REPO).wheel_cache
    lock = REPO / "offline_wheels" / "requirements.lock"
    try:
        wheelhouse.select_wheels(lock.read_text(), cache)
    except wheelhouse.WheelhouseError:
        wheelhouse.fill_cache(lock, cache, Target())


def build_command(out: Path, revision: str, only: Sequence[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "gateway.cli.main", "images", "build", "--out", str(out)]
    for name in only:
        cmd += ["--only", name]
    return [*cmd, "--revision", revision, "--no-download"]


@dataclass(frozen=True)
class Podman:
    """One isolated podman store: every call goes to its own root and runroot."""

    root: Path
    runroot: Path
    env: dict[str, str]

    @property
    def base(self) -> list[str]:
        storage = ["--root", str(self.root), "--runroot", str(self.runroot)]
        return ["podman", *storage, "--runtime", "runc"]

    def run(
        self, *args: str, timeout: float = 300.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.base, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args[:4])} … exited {proc.returncode}: "
                f"{(proc.stderr or proc.stdout)[-3000:]}"
            )
        return proc

    def load(self, archive: Path) -> str:
        """Copy an OCI archive into the store (its manifest digest unchanged); its image id."""
        pulled = self.run("pull", "-q", f"oci-archive:{archive}", timeout=600)
        return pulled.stdout.strip().splitlines()[-1]


@contextmanager
def podman_store(workdir: Path, extra_conf: str = "") -> Iterator[Podman]:
    """A podman store under ``workdir``, emptied and removed on the way out (even on failure):
    its pods, containers and images only (`system reset` would also drop the host's networks)."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "containers.conf"
    conf.write_text(CONTAINERS_CONF + extra_conf)
    runroot = Path(tempfile.mkdtemp(prefix="hf-podman-", dir="/tmp"))
    podman = Podman(workdir / "storage", runroot, {**os.environ, "CONTAINERS_CONF": str(conf)})
    try:
        yield podman
    finally:
        podman.run("pod", "rm", "--all", "--force", "--time", "5", timeout=300, check=False)
        podman.run("rm", "--all", "--force", "--time", "5", timeout=300, check=False)
        podman.run("rmi", "--all", "--force", timeout=300, check=False)
        shutil.rmtree(podman.root, ignore_errors=True)
        shutil.rmtree(runroot, ignore_errors=True)
