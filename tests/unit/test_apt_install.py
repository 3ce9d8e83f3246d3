"""scripts/apt-install.sh with apt-get, dpkg-query, id and sudo stubbed on PATH: only missing
packages, the lists updated once, sudo when not root, a clear message when nothing can install."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "apt-install.sh"
BASH = shutil.which("bash") or "/bin/bash"
STUBS = {
    # installed packages are those named in $INSTALLED
    "dpkg-query": 'for p in $INSTALLED; do [ "$p" = "${@: -1}" ] && echo installed; done; true',
    "apt-get": 'echo "apt-get $*" >>"$CALLS"; [ -z "$APT_FAILS" ] || { echo E: boom >&2; exit 1; }',
    "id": 'echo "$FAKE_UID"',
    "sudo": 'echo sudo >>"$CALLS"; exec "$@"',
}
NO_SUDO = ("dpkg-query", "apt-get", "id")


def run(
    tmp_path: Path,
    *args: str,
    installed: str = "",
    uid: int = 0,
    apt_fails: bool = False,
    stubs: tuple[str, ...] = tuple(STUBS),
    system_path: bool = True,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the script; returns its result and the stubbed commands it ran, in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in stubs:
        (bin_dir / name).write_text(f"#!{BASH}\n{STUBS[name]}\n")
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.touch()
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin" if system_path else str(bin_dir),
        "INSTALLED": installed,
        "FAKE_UID": str(uid),
        "APT_FAILS": "1" if apt_fails else "",
        "CALLS": str(calls),
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [BASH, str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    return done, calls.read_text().splitlines()


def test_only_missing_packages_are_installed_after_one_update(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--for", "install-ocr", "a", "b", "c", installed="b")
    assert done.returncode == 0, done.stderr
    assert calls == ["apt-get update -qq", "apt-get install -y -qq --no-install-recommends a c"]
    assert "install-ocr: installing a c" in done.stdout


@pytest.mark.parametrize("packages", [["a", "b"], []])
def test_nothing_runs_when_every_package_is_there(tmp_path: Path, packages: list[str]) -> None:
    done, calls = run(tmp_path, *packages, installed="a b")
    assert (done.returncode, calls, done.stdout) == (0, [], "")


def test_not_root_goes_through_sudo(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "a", uid=1000)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "sudo",
        "apt-get update -qq",
        "sudo",
        "apt-get install -y -qq --no-install-recommends a",
    ]


def test_not_root_and_no_sudo_says_what_to_run(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--for", "x", "a", uid=1000, stubs=NO_SUDO, system_path=False)
    assert done.returncode == 1 and calls == []
    assert "x: needs root; please run: apt-get install a" in done.stderr


def test_a_failed_install_shows_apts_error_and_fails(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "--for", "x", "a", apt_fails=True)
    assert done.returncode == 1 and calls == ["apt-get update -qq"]
    assert "E: boom" in done.stderr and "x: apt-get could not install a" in done.stderr
