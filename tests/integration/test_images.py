"""The gateway image, built twice from the same commit on this machine (no Docker daemon, nothing
from an image registry): same digests, the OCI labels, a CycloneDX SBOM inside and beside the
archive, a non-root user, no compiler and no shell tools, and `holdfast --help` running inside
it under podman (runc, cgroupfs, no default ulimits: what works on this machine).

The two builds run side by side (each is mostly single-threaded), each from scratch: its own
mmdebstrap run, its own pip install. Only the .deb and wheel download caches are shared; apt and
pip check every file in them against the signed package lists and the lock's hashes."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.images import spec
from tests.integration.podman_support import (
    BUILD_TOOLS,
    REPO,
    RUN_TOOLS,
    apt_install,
    build_command,
    ensure_wheel_cache,
    head_revision,
    podman_store,
)

pytestmark = pytest.mark.integration

IMAGE = spec.GATEWAY
ARCHIVE = f"{IMAGE}.oci.tar"
COMPILERS = ("gcc", "cc", "c++", "g++", "cpp", "clang", "x86_64-linux-gnu-gcc", "cc1")
SHELL_TOOLS = ("bash", "perl", "apt", "apt-get", "sed", "grep", "gzip", "su", "login", "mount")


@dataclass(frozen=True)
class Built:
    first: Path
    second: Path
    revision: str


@dataclass(frozen=True)
class Inspected:
    config: dict[str, object]
    names: frozenset[str]
    sbom_inside: dict[str, object]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if os.geteuid() != 0:
        pytest.fail("the image build needs root (mmdebstrap, chroot)")
    apt_install("test_images", *BUILD_TOOLS, *RUN_TOOLS)
    revision = head_revision()
    ensure_wheel_cache()  # once, so the two builds below only read it
    root = tmp_path_factory.mktemp("images")
    outs = [root / "first", root / "second"]
    procs = [
        subprocess.Popen(
            build_command(out, revision, only=[IMAGE]),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for out in outs
    ]
    logs = [p.communicate(timeout=1200)[0] for p in procs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, log[-3000:]
    print(logs[0][-1500:])
    return Built(outs[0], outs[1], revision)


def _summary(out: Path) -> dict[str, object]:
    data = json.loads((out / "images.json").read_text())
    (image,) = [i for i in data["images"] if i["name"] == IMAGE]
    return dict(image)


@pytest.fixture(scope="module")
def inspected(built: Built) -> Inspected:
    """The config and every path in the image's layers, read from the archive itself."""
    names: set[str] = set()
    sbom: dict[str, object] = {}
    with tarfile.open(built.first / ARCHIVE) as archive:

        def blob(digest: str) -> bytes:
            member = archive.extractfile("blobs/" + digest.replace(":", "/"))
            assert member is not None
            return member.read()

        index = json.loads(blob_index(archive))
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        for layer in manifest["layers"]:
            member = archive.extractfile("blobs/" + layer["digest"].replace(":", "/"))
            assert member is not None
            with gzip.open(member) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
                for entry in tar:
                    name = entry.name.removeprefix("./").lstrip("/")
                    names.add(name)
                    if name == spec.SBOM_PATH:
                        data = tar.extractfile(entry)
                        assert data is not None
                        sbom = json.loads(data.read())
    return Inspected(config, frozenset(names), sbom)


def blob_index(archive: tarfile.TarFile) -> bytes:
    member = archive.extractfile("index.json")
    assert member is not None
    return member.read()


def test_two_builds_of_one_commit_give_identical_digests(built: Built) -> None:
    first, second = _summary(built.first), _summary(built.second)
    assert first["digest"] == second["digest"]
    assert first["archive_sha256"] == second["archive_sha256"]
    assert (built.first / ARCHIVE).read_bytes() == (built.second / ARCHIVE).read_bytes()


def test_the_image_carries_the_oci_labels_of_its_commit(built: Built, inspected: Inspected) -> None:
    config = inspected.config["config"]
    assert isinstance(config, dict)
    labels = config["Labels"]
    for key in ("version", "revision", "source", "licenses", "created"):
        assert labels[f"org.opencontainers.image.{key}"], key
    assert labels["org.opencontainers.image.revision"] == built.revision
    # created (image and label) is the commit's time, not the build's
    epoch = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct", built.revision],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert inspected.config["created"] == spec.rfc3339(int(epoch))
    assert labels["org.opencontainers.image.created"] == spec.rfc3339(int(epoch))


def test_the_image_runs_as_a_non_root_user_with_its_home(inspected: Inspected) -> None:
    config = inspected.config["config"]
    assert isinstance(config, dict)
    assert config["User"] == f"{spec.UID}:{spec.UID}"
    assert f"HOLDFAST_HOME={spec.HOLDFAST_HOME}" in config["Env"]
    assert config["WorkingDir"] == spec.HOLDFAST_HOME


def test_a_cyclonedx_sbom_is_inside_the_image_and_beside_the_archive(
    built: Built, inspected: Inspected
) -> None:
    beside = json.loads((built.first / f"{IMAGE}.cdx.json").read_text())
    assert inspected.sbom_inside == beside
    assert beside["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in beside["components"]}
    assert {"fastapi", "onnxruntime", "python3.11", "libc6"} <= names
    assert "pytest" not in names  # the lock's dev extra stays out of the image


def test_the_image_has_no_compiler_and_no_shell_tools_it_does_not_need(
    inspected: Inspected,
) -> None:
    for folder in ("usr/bin", "usr/sbin", "usr/local/bin"):
        for tool in (*COMPILERS, *SHELL_TOOLS):
            assert f"{folder}/{tool}" not in inspected.names
    assert not [n for n in inspected.names if n.startswith("usr/lib/gcc/")]
    assert not [n for n in inspected.names if n.endswith(".deb")]  # the cache stays outside
    assert "usr/bin/python3.11" in inspected.names
    assert f"{spec.VENV.lstrip('/')}/bin/holdfast" in inspected.names


def test_holdfast_help_runs_inside_the_gateway_image_under_podman(
    built: Built, tmp_path: Path
) -> None:
    with podman_store(tmp_path) as podman:
        image = podman.load(built.first / ARCHIVE)
        run = ["run", "--rm", "--network", "none"]
        helped = podman.run(*run, image, "--help", check=False)
        assert helped.returncode == 0, helped.stderr[-2000:]
        assert "worker" in helped.stdout and "serve" in helped.stdout
        who = podman.run(
            *run,
            "--entrypoint",
            f"{spec.VENV}/bin/python",
            image,
            "-c",
            "import os;print(os.getuid(), os.environ['HOLDFAST_HOME'], os.access('.', os.W_OK))",
            check=False,
        )
        assert who.returncode == 0, who.stderr[-2000:]
        assert who.stdout.split() == [str(spec.UID), spec.HOLDFAST_HOME, "True"]
