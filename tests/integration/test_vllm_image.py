"""The vLLM image for GPU nodes (issue #17), built on this machine without a Docker daemon from
the locked CUDA wheels (offline_wheels/vllm): with no GPU here it cannot serve, so the test is
that it builds and that vLLM imports inside it under podman, as the unprivileged user, with its
OCI labels and a CycloneDX SBOM naming vLLM, torch and the Debian packages.

The wheel cache is filled once (about 5 GB the first time on a machine; kept across runs)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.bundle import wheelhouse
from gateway.bundle.wheelhouse import Target
from gateway.images import spec
from gateway.images.build import BuildOptions
from gateway.images.vllm_image import LOCK, VENV, locked_version
from tests.integration.podman_support import (
    BUILD_TOOLS,
    REPO,
    RUN_TOOLS,
    Podman,
    apt_install,
    build_command,
    head_revision,
    podman_store,
)

pytestmark = pytest.mark.integration

IMAGE = spec.VLLM
VERSION = locked_version((REPO / LOCK).read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("the image build needs root (mmdebstrap, chroot)")
    apt_install("test_vllm_image", *BUILD_TOOLS, *RUN_TOOLS)
    cache = BuildOptions(REPO, REPO).wheel_cache
    lock = REPO / LOCK
    try:
        wheelhouse.select_wheels(lock.read_text(), cache)
    except wheelhouse.WheelhouseError:
        wheelhouse.fill_cache(lock, cache, Target())
    out = tmp_path_factory.mktemp("vllm-image")
    started = time.monotonic()
    done = subprocess.run(
        build_command(out, head_revision(), only=[IMAGE]),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    print(done.stdout[-1500:])
    print(f"{IMAGE} built in {time.monotonic() - started:.0f} s")
    return out


@pytest.fixture(scope="module")
def loaded(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Podman, str]]:
    with podman_store(tmp_path_factory.mktemp("vllm-podman")) as podman:
        yield podman, podman.load(built / f"{IMAGE}.oci.tar")


def test_the_image_is_tagged_with_the_locked_vllm_and_labelled(
    built: Path, loaded: tuple[Podman, str]
) -> None:
    (image,) = json.loads((built / "images.json").read_text())["images"]
    assert image["name"] == IMAGE
    assert image["tag"] == VERSION
    podman, image_id = loaded
    inspect = podman.run("image", "inspect", "--format", "{{json .Labels}}", image_id)
    labels = json.loads(inspect.stdout)
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.revision"] == head_revision()
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    print(f"{IMAGE}:{VERSION} {image['digest']} {image['size_bytes'] / 1e9:.1f} GB compressed")


def test_the_sbom_names_vllm_torch_and_the_debian_packages(built: Path) -> None:
    sbom = json.loads((built / f"{IMAGE}.cdx.json").read_text())
    versions = {c["name"]: c.get("version") for c in sbom["components"]}
    assert versions["vllm"] == VERSION
    assert "torch" in versions
    assert {"python3.11", "libc6"} <= set(versions)


def test_vllm_imports_inside_the_image_as_the_unprivileged_user(
    loaded: tuple[Podman, str],
) -> None:
    podman, image = loaded
    imported = podman.run(
        "run", "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp",
        "--entrypoint", "python3", image,
        "-c", "import os, vllm; print(os.getuid(), vllm.__version__)",
        timeout=600, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr[-3000:]
    assert imported.stdout.split()[-2:] == [str(spec.UID), VERSION], imported.stdout
    which = podman.run("run", "--rm", "--entrypoint", "sh", image, "-c", "command -v python3")
    assert which.stdout.strip() == f"{VENV}/bin/python3"
