"""The gateway image's layer: a virtualenv at /opt/holdfast/venv made by the image's own
python3.11 (Debian's), holding exactly the runtime subset of the lock (its markers evaluated
for that Python), the holdfast wheel and the en_core_web_sm alias, installed by
``pip install --require-hashes --no-index`` inside a chroot of a copy of the base."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle import sbom as bundle_sbom
from gateway.bundle import wheelhouse
from gateway.images import oci, spec
from gateway.images.chroot_python import ChrootPython, cached_wheels, run_logged
from gateway.images.spec import ImageConfig, ImagesError

Progress = Callable[[str, str], None]
ALIAS_FOLDER = Path("offline_wheels") / "local_packages" / "en_core_web_sm"


@dataclass(frozen=True, slots=True)
class GatewayInputs:
    src: Path  # the git archive of the commit
    work: Path
    log: Path
    wheel_cache: Path
    download: bool
    epoch: int


def _wheels(inp: GatewayInputs, dest: Path, environment: dict[str, str], say: Progress) -> Path:
    """The runtime wheels (lock subset) + holdfast + the alias in ``dest``, and the
    requirements file pinning each to its own digest; returns that file."""
    lock = inp.src / "offline_wheels" / "requirements.lock"
    chosen = cached_wheels(spec.GATEWAY, lock, inp.wheel_cache, download=inp.download, say=say)
    project = tomllib.loads((inp.src / "pyproject.toml").read_text())["project"]
    alias = tomllib.loads((inp.src / ALIAS_FOLDER / "pyproject.toml").read_text())
    roots = [*project["dependencies"], *alias["project"].get("dependencies", [])]
    needed = spec.runtime_closure(roots, _requires_of, environment)
    by_name = {spec.normal_name(p.name): (p, found) for p, found in chosen.items()}
    missing = sorted(needed - set(by_name))
    if missing:
        raise ImagesError(f"{spec.GATEWAY}: not in the lock: {', '.join(missing)}")
    dest.mkdir(parents=True)
    pins: list[tuple[str, str, str]] = []
    for name in sorted(needed):
        package, (path, digest) = by_name[name]
        wheelhouse.link_or_copy(path, dest / path.name)
        pins.append((package.name, package.version, digest))
    say(spec.GATEWAY, f"wheels: {len(pins)} runtime packages of the lock; holdfast wheel")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(inp.epoch)}
    for folder in (inp.src, inp.src / ALIAS_FOLDER):
        run_logged(
            "pip wheel",
            [
                *wheelhouse.pip_command(),
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(dest),
                str(folder),
            ],
            inp.log,
            env,
        )
    for built in sorted(dest.glob("*.whl")):
        stem = built.name.split("-")
        if stem[0] in ("holdfast", "en_core_web_sm"):
            pins.append((stem[0], stem[1], oci.sha256_of(built)))
    requirements = dest / wheelhouse.BUNDLE_REQUIREMENTS
    requirements.write_text(wheelhouse.bundle_requirements(pins))
    return requirements


def gateway_layer(
    inp: GatewayInputs, base_root: Path, layer: Path, debs: list[spec.DebPackage], say: Progress
) -> tuple[ImageConfig, dict[str, object]]:
    """Install the gateway into ``layer``/opt/holdfast/venv from a copy of the base root
    filesystem; returns the image config and the SBOM (the lock's runtime packages by
    cyclonedx-py, plus the Debian packages)."""
    name = spec.GATEWAY
    say(name, "copy of the base to install into")
    venv = spec.VENV
    chroot = ChrootPython.create(base_root, inp.work / "gateway-root", venv, inp.epoch, inp.log)
    requirements = _wheels(inp, chroot.wheels, chroot.marker_env(), say)
    say(name, f"pip install --require-hashes into {venv} (the image's python3.11)")
    chroot.pip_install(requirements.name)
    say(name, "compileall (checked-hash .pyc)")
    chroot.compile()
    (layer / "opt").mkdir()
    os.rename(chroot.root / "opt/holdfast", layer / "opt/holdfast")
    try:
        python = bundle_sbom.python_sbom(requirements, inp.src / "pyproject.toml")
    except bundle_sbom.SbomError as exc:
        raise ImagesError(f"{name}: {exc}") from exc
    shutil.rmtree(chroot.root)
    components = python.get("components", [])
    assert isinstance(components, list)
    python["components"] = [*components, *spec.deb_components(debs)]
    config = ImageConfig(
        entrypoint=(f"{venv}/bin/holdfast",),
        cmd=("serve",),
        env=(
            f"PATH={venv}/bin:/usr/local/bin:/usr/bin:/bin",
            f"HOLDFAST_HOME={spec.HOLDFAST_HOME}",
            f"HOLDFAST_MODELS_DIR={spec.MODELS_DIR}",
            # a container listens on its own interface (the setting's default is loopback)
            "HOLDFAST_GATEWAY__HOST=0.0.0.0",
            "PYTHONUNBUFFERED=1",
            "LC_ALL=C.UTF-8",
        ),
        workdir=spec.HOLDFAST_HOME,
        ports=("8080/tcp",),
        volumes=(spec.HOLDFAST_HOME,),
        title=name,
        description="Holdfast gateway and CLI (holdfast serve, holdfast worker)",
    )
    return config, python


def _requires_of(name: str) -> list[str] | None:
    try:
        return importlib.metadata.distribution(name).requires or []
    except importlib.metadata.PackageNotFoundError:
        return None
