"""The wheelhouse's own lock (requirements.bundle.txt): pip installs exactly those files with
--require-hashes, and refuses a wheel whose bytes differ from its pin."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from gateway.bundle.checksums import sha256_file
from gateway.bundle.wheelhouse import bundle_requirements, pip_command

pytestmark = pytest.mark.unit


def make_wheel(folder: Path, name: str, version: str, requires: str = "") -> Path:
    """A minimal pure-Python wheel (one module, METADATA, WHEEL, RECORD)."""
    dist = f"{name}-{version}.dist-info"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires:
        metadata += f"Requires-Dist: {requires}\n"
    files = {
        f"{name}.py": "VALUE = 1\n",
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def pip_dry_run(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *pip_command(),  # the pip the bundle build itself uses
            "install",
            "--dry-run",
            "--quiet",
            "--no-index",
            "--require-hashes",
            "--find-links",
            str(folder),
            "-r",
            str(folder / "requirements.bundle.txt"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_wheel_is_pinned_to_its_own_digest_sorted_by_name() -> None:
    text = bundle_requirements([("zeta", "1.0", "b" * 64), ("En_core_web_sm", "3.8.0", "a" * 64)])
    pins = [line for line in text.splitlines() if not line.startswith("#")]
    assert pins == [
        f"En_core_web_sm==3.8.0 --hash=sha256:{'a' * 64}",
        f"zeta==1.0 --hash=sha256:{'b' * 64}",
    ]


def test_pip_installs_the_pinned_wheels_and_refuses_an_altered_one(tmp_path: Path) -> None:
    app = make_wheel(tmp_path, "hfapp", "0.1.0", requires="hfdep==2.0")
    dep = make_wheel(tmp_path, "hfdep", "2.0")
    wheels = [("hfapp", "0.1.0", sha256_file(app)), ("hfdep", "2.0", sha256_file(dep))]
    (tmp_path / "requirements.bundle.txt").write_text(bundle_requirements(wheels))
    done = pip_dry_run(tmp_path)
    assert done.returncode == 0, done.stderr
    make_wheel(tmp_path, "hfdep", "2.0", requires="something-else")  # other bytes, same name
    done = pip_dry_run(tmp_path)
    assert done.returncode != 0
    assert "DO NOT MATCH THE HASHES" in done.stderr
