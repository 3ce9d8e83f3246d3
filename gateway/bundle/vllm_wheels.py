"""The GPU model server's wheelhouse (``holdfast bundle build --with-vllm``).

vLLM serves the chat model (``--runner generate``) and the embedding model (``--runner pooling``)
on GPU hosts from one set of CUDA wheels (torch and the nvidia-* libraries, about 5 GB), pinned by
``offline_wheels/vllm/requirements.lock``. That lock never resolves together with the gateway's:
the wheels go under ``vllm/`` with their own lock, and hosts install them into a virtualenv of
their own. The files come from the same download cache as the gateway's wheels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle import wheelhouse
from gateway.bundle.wheelhouse import LockedPackage, Target, WheelhouseError


@dataclass(frozen=True, slots=True)
class VllmWheels:
    version: str  # vllm's own pin
    lock: Path
    wheels: list[tuple[LockedPackage, Path, str]]  # (package, cached file, its sha256)


def lock_path(repo_root: Path) -> Path:
    return repo_root / "offline_wheels" / "vllm" / "requirements.lock"


def collect(
    repo_root: Path,
    cache: Path,
    target: Target,
    *,
    download: bool,
    say: Callable[[str], None] = lambda _detail: None,
) -> VllmWheels:
    """Every wheel of the lock, by its locked hash, from ``cache`` (the missing ones downloaded
    first when ``download`` allows it)."""
    lock = lock_path(repo_root)
    if not lock.is_file():
        raise WheelhouseError(f"{lock} not found")
    chosen = wheelhouse.locked_wheels(
        lock,
        cache,
        target,
        download=download,
        on_download=lambda: say(f"pip download into {cache} (about 5 GB the first time)"),
    )
    versions = [package.version for package in chosen if package.name == "vllm"]
    if not versions:
        raise WheelhouseError(f"{lock} pins no vllm")
    wheels = [(p, path, digest) for p, (path, digest) in sorted(chosen.items(), key=_by_name)]
    return VllmWheels(versions[0], lock, wheels)


def _by_name(item: tuple[LockedPackage, tuple[Path, str]]) -> str:
    return item[0].name
