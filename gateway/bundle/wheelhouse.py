"""The wheelhouse: every wheel the lock file names, for the target platform and Python, with the
lock's hashes enforced by pip. Downloads land in a persistent cache folder that pip reuses, so a
rebuild only fetches what changed; the bundle gets hard links (or copies) of exactly the files
whose digests the lock lists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle.checksums import sha256_file

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")


class WheelhouseError(Exception):
    """pip could not fetch a wheel the lock names (message carries pip's last lines)."""


@dataclass(frozen=True, slots=True)
class Target:
    """The machine the bundle installs onto."""

    python_version: str = "3.11"
    platform: str = "manylinux_2_28_x86_64"

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    def platform_tags(self) -> list[str]:
        """A glibc target accepts every older manylinux tag too (PEP 600); pip wants them listed
        explicitly when ``--platform`` is given."""
        match = _MANYLINUX.match(self.platform)
        if not match:
            return [self.platform]
        major, minor, arch = int(match[1]), int(match[2]), match[3]
        tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 4, -1)]
        legacy = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
        tags += [f"{name}_{arch}" for name, needs in legacy.items() if minor >= needs]
        return [*tags, f"linux_{arch}"]


@dataclass(frozen=True, slots=True)
class LockedPackage:
    name: str
    version: str
    hashes: frozenset[str]


def parse_lock(text: str) -> list[LockedPackage]:
    """Pins and hashes of a ``pip-compile --generate-hashes`` / ``uv pip compile`` lock."""
    packages: list[LockedPackage] = []
    current: tuple[str, str] | None = None
    hashes: set[str] = set()
    for line in text.splitlines():
        pin = _PIN.match(line)
        if pin:
            if current:
                packages.append(LockedPackage(current[0], current[1], frozenset(hashes)))
            current, hashes = (pin[1].lower(), pin[2]), set()
        hashes.update(_HASH.findall(line))
    if current:
        packages.append(LockedPackage(current[0], current[1], frozenset(hashes)))
    return packages


def pip_command() -> list[str]:
    """A Python that has pip: this one if it does (a uv venv does not), else python3 on PATH."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in (f"python{sys.version_info[0]}.{sys.version_info[1]}", "python3"):
        found = shutil.which(name)
        if found:
            return [found, "-m", "pip"]
    raise WheelhouseError("no Python with pip found to download wheels (install python3-pip)")


def download_command(lock: Path, cache: Path, target: Target) -> list[str]:
    cmd = [*pip_command(), "download", "--quiet", "--require-hashes", "--no-deps"]
    cmd += ["--only-binary=:all:", "--implementation", "cp"]
    cmd += ["--python-version", target.python_version]
    for tag in target.platform_tags():
        cmd += ["--platform", tag]
    for abi in (target.abi, "abi3", "none"):
        cmd += ["--abi", abi]
    return [*cmd, "-r", str(lock), "-d", str(cache)]


_NO_WHEEL = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==(\S+)")


def _lock_blocks(text: str) -> list[str]:
    """The lock split into one block per pin (its line, hashes and comments)."""
    blocks: list[str] = []
    for line in text.splitlines(keepends=True):
        if _PIN.match(line) or not blocks:
            blocks.append(line)
        else:
            blocks[-1] += line
    return blocks


def _build_from_sdist(block: str, cache: Path, workdir: Path) -> None:
    """A package published only as an sdist: fetch it (hash-checked) and build its wheel."""
    req = workdir / "sdist-requirement.txt"
    req.write_text(block)
    cmd = [*pip_command(), "wheel", "--quiet", "--no-deps", "--require-hashes", "-r", str(req)]
    done = subprocess.run([*cmd, "-w", str(cache)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = "\n".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise WheelhouseError(f"building a wheel from the sdist failed: {last}")


def fill_cache(lock: Path, cache: Path, target: Target) -> None:
    """Download what the cache lacks (pip keeps files already there whose hash matches).

    A locked package with no wheel at all is built from its hash-checked sdist (pure-Python
    packages only make sense here; the build runs on this machine)."""
    cache.mkdir(parents=True, exist_ok=True)
    blocks = _lock_blocks(lock.read_text())
    workdir = cache / ".work"
    workdir.mkdir(exist_ok=True)
    for _ in range(len(blocks)):
        remaining = workdir / "requirements.lock"
        remaining.write_text("".join(blocks))
        done = subprocess.run(
            download_command(remaining, cache, target), capture_output=True, text=True, check=False
        )
        if done.returncode == 0:
            return
        output = done.stderr or done.stdout
        missing = _NO_WHEEL.search(output)
        if missing is None:
            last = "\n".join(output.strip().splitlines()[-3:])
            raise WheelhouseError(f"pip download failed: {last}")
        name = missing[1].lower()
        block = next(b for b in blocks if (m := _PIN.match(b)) and m[1].lower() == name)
        _build_from_sdist(block, cache, workdir)
        blocks.remove(block)


DIGEST_INDEX = ".sha256-index.json"


def cached_digests(cache: Path) -> dict[Path, str]:
    """SHA-256 of every wheel in the cache. Digests are remembered in a small index beside the
    wheels, keyed by name, size and mtime, so a rebuild does not re-read gigabytes of unchanged
    wheels; a file whose size or mtime changed is hashed again."""
    index_file = cache / DIGEST_INDEX
    try:
        known = json.loads(index_file.read_text())
        if not isinstance(known, dict):
            known = {}
    except (OSError, ValueError):
        known = {}
    digests: dict[Path, str] = {}
    fresh: dict[str, list[object]] = {}
    for wheel in sorted(cache.glob("*.whl")):
        info = wheel.stat()
        entry = known.get(wheel.name)
        if (
            isinstance(entry, list)
            and len(entry) == 3
            and entry[:2] == [info.st_size, info.st_mtime_ns]
            and isinstance(entry[2], str)
        ):
            digest = entry[2]
        else:
            digest = sha256_file(wheel)
        digests[wheel] = digest
        fresh[wheel.name] = [info.st_size, info.st_mtime_ns, digest]
    if fresh != known:
        tmp = index_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(fresh, indent=0, sort_keys=True))
            tmp.replace(index_file)
        except OSError:  # a read-only cache still works, only slower next time
            pass
    return digests


def select_wheels(lock_text: str, cache: Path) -> dict[LockedPackage, tuple[Path, str]]:
    """For each locked package, the cached wheel whose digest the lock lists (and that digest)."""
    by_digest = {digest: wheel for wheel, digest in cached_digests(cache).items()}
    chosen: dict[LockedPackage, tuple[Path, str]] = {}
    missing: list[str] = []
    for package in parse_lock(lock_text):
        digest = next((h for h in sorted(package.hashes) if h in by_digest), None)
        if digest is not None:
            chosen[package] = (by_digest[digest], digest)
            continue
        stem = re.sub(r"[-_.]+", "_", package.name)
        built = sorted(cache.glob(f"{stem}-{package.version}-py3-none-any.whl"))
        if built:  # built here from the sdist whose hash the lock lists
            chosen[package] = (built[0], sha256_file(built[0]))
        else:
            missing.append(f"{package.name}=={package.version}")
    if missing:
        raise WheelhouseError(f"no wheel with a locked hash in {cache} for: {', '.join(missing)}")
    return chosen


def locked_wheels(
    lock: Path,
    cache: Path,
    target: Target,
    *,
    download: bool,
    on_download: Callable[[], None] = lambda: None,
) -> dict[LockedPackage, tuple[Path, str]]:
    """:func:`select_wheels` for ``lock``; when the cache lacks some and ``download`` allows it,
    fills the cache first (``on_download`` says so) and selects again."""
    try:
        return select_wheels(lock.read_text(), cache)
    except WheelhouseError:
        if not download:
            raise
    on_download()
    fill_cache(lock, cache, target)
    return select_wheels(lock.read_text(), cache)


def link_or_copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


# The wheelhouse's own lock: every wheel the bundle carries, pinned to the digest of that very
# file. The project lock cannot serve `pip install --require-hashes` on the host by itself: a
# package published only as an sdist is shipped as a wheel built here (another digest), and the
# bundle's own wheels (holdfast, the en_core_web_sm alias) are in no lock at all.
BUNDLE_REQUIREMENTS = "requirements.bundle.txt"


def bundle_requirements(wheels: list[tuple[str, str, str]]) -> str:
    """``name==version --hash=sha256:<digest>`` per (name, version, digest), sorted by name."""
    header = (
        "# Every wheel in this folder, pinned to its own sha256 (SHA256SUMS and its signature\n"
        "# vouch for this file). Install: pip install --no-index --require-hashes\n"
        "#   --find-links <this folder> -r requirements.bundle.txt\n"
    )
    lines = [
        f"{name}=={version} --hash=sha256:{digest}\n"
        for name, version, digest in sorted(wheels, key=lambda w: re.sub(r"[-_.]+", "-", w[0]))
    ]
    return header + "".join(lines)
