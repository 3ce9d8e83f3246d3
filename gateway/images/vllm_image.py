"""The vLLM image's layer, for GPU nodes: a virtualenv at /opt/vllm/venv made by the image's own
python3.11, holding exactly offline_wheels/vllm/requirements.lock (vLLM and its CUDA wheels:
torch, the nvidia-* runtime libraries, triton), installed by ``pip install --require-hashes
--no-index``. One image serves the chart's chat model (llm.engine: vllm) and can serve embedding
and scoring models: text-embeddings-inference's source is in no package registry an air-gapped
build reaches, vLLM is on the package index.

No bytecode is compiled in (9 GB of packages; Python imports from source on a read-only root),
so nothing in the layer depends on the build's time."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle import sbom as bundle_sbom
from gateway.bundle import wheelhouse
from gateway.images import spec
from gateway.images.chroot_python import ChrootPython, cached_wheels
from gateway.images.spec import ImageConfig, ImagesError

Progress = Callable[[str, str], None]
LOCK = Path("offline_wheels") / "vllm" / "requirements.lock"
VENV = "/opt/vllm/venv"


@dataclass(frozen=True, slots=True)
class VllmInputs:
    src: Path  # the git archive of the commit
    work: Path
    log: Path
    wheel_cache: Path
    download: bool
    epoch: int


def locked_version(lock_text: str, name: str = "vllm") -> str:
    """The version the lock pins ``name`` at (the image's tag)."""
    for package in wheelhouse.parse_lock(lock_text):
        if spec.normal_name(package.name) == name:
            return package.version
    raise ImagesError(f"{spec.VLLM}: {name} is not in {LOCK}")


def _requirements(inp: VllmInputs, dest: Path, say: Progress) -> Path:
    """Every wheel of the lock (matched by hash in the cache, downloaded into it if allowed) in
    ``dest``, and the requirements file pinning each to its digest; returns that file."""
    chosen = cached_wheels(
        spec.VLLM, inp.src / LOCK, inp.wheel_cache, download=inp.download, say=say
    )
    dest.mkdir(parents=True)
    pins = []
    for package, (path, digest) in sorted(chosen.items(), key=lambda item: item[0].name):
        wheelhouse.link_or_copy(path, dest / path.name)
        pins.append((package.name, package.version, digest))
    say(spec.VLLM, f"wheels: {len(pins)} packages of {LOCK}")
    requirements = dest / wheelhouse.BUNDLE_REQUIREMENTS
    requirements.write_text(wheelhouse.bundle_requirements(pins))
    return requirements


def vllm_layer(
    inp: VllmInputs, base_root: Path, layer: Path, debs: list[spec.DebPackage], say: Progress
) -> tuple[ImageConfig, dict[str, object]]:
    """Install vLLM into ``layer``/opt/vllm/venv from a copy of the base root filesystem;
    returns the image config and the SBOM (the lock's packages, plus the Debian packages)."""
    name = spec.VLLM
    version = locked_version((inp.src / LOCK).read_text())
    say(name, "copy of the base to install into")
    chroot = ChrootPython.create(base_root, inp.work / "vllm-root", VENV, inp.epoch, inp.log)
    requirements = _requirements(inp, chroot.wheels, say)
    say(name, f"pip install --require-hashes into {VENV} (vLLM {version}; several minutes)")
    chroot.pip_install(requirements.name)
    (layer / "opt").mkdir()
    (chroot.root / "opt/vllm").rename(layer / "opt/vllm")
    # cyclonedx-py names the SBOM's root from a pyproject: the image's one requirement
    pyproject = inp.work / "vllm-pyproject.toml"
    pyproject.write_text(
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = ["vllm=={version}"]\n'
    )
    try:
        python = bundle_sbom.python_sbom(requirements, pyproject)
    except bundle_sbom.SbomError as exc:
        raise ImagesError(f"{name}: {exc}") from exc
    components = python.get("components", [])
    assert isinstance(components, list)
    python["components"] = [*components, *spec.deb_components(debs)]
    config = ImageConfig(
        entrypoint=(f"{VENV}/bin/vllm",),
        cmd=("--version",),  # the chart gives the command: `vllm serve` needs a model
        env=(
            f"PATH={VENV}/bin:/usr/local/bin:/usr/bin:/bin",
            # models come from the read-only model store, never from a hub; no usage reports
            "HF_HUB_OFFLINE=1",
            "TRANSFORMERS_OFFLINE=1",
            "VLLM_NO_USAGE_STATS=1",
            "DO_NOT_TRACK=1",
            "HOME=/tmp/home",
            "PYTHONUNBUFFERED=1",
            "LC_ALL=C.UTF-8",
        ),
        workdir="/tmp",
        ports=("8000/tcp",),
        licenses="Apache-2.0",
        title=name,
        description=f"vLLM {version} (CUDA) for GPU nodes: chat, embedding and scoring models",
        version=version,
    )
    shutil.rmtree(chroot.root)
    return config, python
