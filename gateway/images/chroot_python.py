"""A virtualenv made and filled inside a copy of the base root filesystem, by the image's own
python3.11 (Debian's) under chroot: what the gateway and vLLM images install their Python
packages with. The lock's markers are evaluated for that interpreter, not the builder's, and pip
installs with ``--require-hashes --no-index`` from a folder of wheels inside the root."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle import wheelhouse
from gateway.images.spec import ImagesError

# PEP 508 marker variables of the interpreter that runs it (as packaging computes them)
_MARKER_ENV = (
    "import json, os, platform, sys; i = sys.implementation; "
    "v = f'{i.version.major}.{i.version.minor}.{i.version.micro}'; "
    "print(json.dumps({'implementation_name': i.name, 'implementation_version': v, "
    "'os_name': os.name, 'platform_machine': platform.machine(), "
    "'platform_release': platform.release(), 'platform_system': platform.system(), "
    "'platform_version': platform.version(), "
    "'python_full_version': platform.python_version(), "
    "'platform_python_implementation': platform.python_implementation(), "
    "'python_version': '.'.join(platform.python_version_tuple()[:2]), "
    "'sys_platform': sys.platform}))"
)
# The folder inside the root that pip installs from.
WHEELS = "/tmp/wheels"


def cached_wheels(
    image: str, lock: Path, cache: Path, *, download: bool, say: Callable[[str, str], None]
) -> dict[wheelhouse.LockedPackage, tuple[Path, str]]:
    """The wheels ``lock`` pins, from the download cache (the missing ones fetched into it when
    ``download`` allows); a wheelhouse problem becomes an ImagesError naming ``image``."""
    try:
        return wheelhouse.locked_wheels(
            lock,
            cache,
            wheelhouse.Target(),
            download=download,
            on_download=lambda: say(image, f"wheels: pip download into {cache} (kept)"),
        )
    except wheelhouse.WheelhouseError as exc:
        raise ImagesError(f"{image}: {exc}") from exc


def run_logged(step: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Run ``argv`` with its output appended to ``log``; a failure names the step and the log's
    last two lines."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-2:]
        raise ImagesError(f"{step} failed ({' | '.join(tail)}); full log in {log}")


@dataclass(frozen=True, slots=True)
class ChrootPython:
    root: Path  # the copy of the base root filesystem
    venv: str  # the virtualenv's path inside it
    epoch: int
    log: Path

    @classmethod
    def create(cls, base_root: Path, root: Path, venv: str, epoch: int, log: Path) -> ChrootPython:
        """Copy the base to ``root`` and make an empty virtualenv (no pip) at ``venv`` in it."""
        run_logged("cp", ["cp", "-a", str(base_root), str(root)], log)
        made = cls(root, venv, epoch, log)
        run_logged(
            "venv",
            [*made.command(), "/usr/bin/python3.11", "-m", "venv", "--without-pip", venv],
            log,
        )
        return made

    def command(self, *extra_env: str) -> list[str]:
        """The prefix that runs a program inside the root with a clean, fixed environment."""
        env = {
            "PATH": "/usr/bin:/bin",
            "SOURCE_DATE_EPOCH": str(self.epoch),
            "PYTHONHASHSEED": "0",
            # no import-time .pyc (setuptools' .pth imports _distutils_hack in every
            # interpreter, which wrote a timestamp .pyc with the install time): compile() writes
            # them all, or none are written
            "PYTHONDONTWRITEBYTECODE": "1",
            "LC_ALL": "C.UTF-8",
            "HOME": "/tmp",
        }
        args = [f"{k}={v}" for k, v in env.items()]
        return ["chroot", str(self.root), "/usr/bin/env", "-i", *args, *extra_env]

    def marker_env(self) -> dict[str, str]:
        """The venv interpreter's PEP 508 marker variables (Debian's 3.11.2, not ours)."""
        done = subprocess.run(
            [*self.command(), f"{self.venv}/bin/python", "-c", _MARKER_ENV],
            capture_output=True,
            text=True,
            check=True,
        )
        found: dict[str, str] = json.loads(done.stdout)
        return found

    @property
    def wheels(self) -> Path:
        """Where to put the wheels and the requirements file pip installs from."""
        return self.root / WHEELS.lstrip("/")

    def pip_install(self, requirements: str) -> None:
        """``pip install --require-hashes --no-index`` of ``requirements`` (a file in
        ``wheels``) into the venv, with the builder's own pip put on PYTHONPATH (the venv has
        none, and none is left behind)."""
        pip_pkg = Path(
            subprocess.run(
                [
                    *wheelhouse.pip_command()[:1],
                    "-c",
                    "import pip,os;print(os.path.dirname(pip.__file__))",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        shutil.copytree(pip_pkg, self.root / "tmp/pip-src/pip")
        run_logged(
            "pip install",
            [
                *self.command("PYTHONPATH=/tmp/pip-src"),
                f"{self.venv}/bin/python",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-index",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--require-hashes",
                "--no-compile",
                "--find-links",
                WHEELS,
                "-r",
                f"{WHEELS}/{requirements}",
            ],
            self.log,
        )

    def compile(self) -> None:
        """Bytecode on every core (pip compiles on one); hash-checked .pyc files carry no source
        mtime. A few packages ship files that are not Python 3 (pip ignores those too)."""
        compileall = ["-m", "compileall", "-f", "-q", "-q", "-j", "0"]
        compileall += ["--invalidation-mode", "checked-hash", f"{self.venv}/lib"]
        subprocess.run(
            [*self.command(), f"{self.venv}/bin/python", *compileall],
            capture_output=True,
            check=False,
        )
