"""The CycloneDX SBOM: Python packages from the lock (by ``cyclonedx-py``), plus one component
per non-Python artefact (binaries, Debian packages, models, container images, chart, playbook) and
per wheel the
lock does not name (the en_core_web_sm alias, built from offline_wheels/local_packages), each with
its SHA-256; a Debian package also carries its package URL (pkg:deb/debian/...), a container image
its manifest digest (pkg:oci/holdfast-gateway@sha256%3A...?tag=0.1.0)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from gateway.bundle.records import Artefact, ImageRecord

_COMPONENT_TYPE = {
    "binary": "application",
    "image": "container",
    "deb": "library",
    "model": "machine-learning-model",
    "chart": "file",
    "playbook": "file",
    "sample": "data",
}


class SbomError(Exception):
    """cyclonedx-py failed or is not installed."""


def _cyclonedx_py() -> str:
    beside = Path(sys.executable).parent / "cyclonedx-py"
    found = str(beside) if beside.is_file() else shutil.which("cyclonedx-py")
    if not found:
        raise SbomError("cyclonedx-py not found; install the dev extra (cyclonedx-bom)")
    return found


def python_sbom(lock: Path, pyproject: Path) -> dict[str, object]:
    done = subprocess.run(
        [
            _cyclonedx_py(),
            "requirements",
            "--pyproject",
            str(pyproject),
            "--of",
            "JSON",
            "--output-reproducible",
            "-o",
            "-",
            str(lock),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SbomError(f"cyclonedx-py failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def deb_purl(artefact: Artefact, deb_target: str) -> str:
    """``pkg:deb/debian/tesseract-ocr@5.3.0-2?arch=amd64&distro=debian-bookworm`` (purl spec;
    the epoch's colon percent-encoded); the architecture is the file name's last field."""
    distribution, _, rest = deb_target.partition("/")
    codename = rest.partition("/")[0]
    arch = artefact.path.rsplit("_", 1)[-1].removesuffix(".deb")
    version = artefact.version.replace(":", "%3A")
    return (
        f"pkg:deb/{distribution}/{artefact.name}@{version}"
        f"?arch={arch}&distro={distribution}-{codename}"
    )


def oci_purl(image: ImageRecord) -> str:
    """``pkg:oci/holdfast-gateway@sha256%3A<hex>?tag=0.1.0`` (purl spec: the digest is the
    version, no registry qualifier: the customer's registry is not known at build time)."""
    return f"pkg:oci/{image.name}@{image.digest.replace(':', '%3A')}?tag={image.tag}"


def add_artefacts(
    sbom: dict[str, object],
    artefacts: Iterable[Artefact],
    deb_target: str = "debian/bookworm/amd64",
    images: Iterable[ImageRecord] = (),
) -> dict[str, object]:
    """Append the non-Python artefacts as components, and the wheels the lock does not name (those
    the lock names are already there, from cyclonedx-py; holdfast is the SBOM's own component)."""
    components = sbom.setdefault("components", [])
    assert isinstance(components, list)
    # by name and version: the vLLM wheelhouse (vllm/) pins some projects at other versions
    listed = {
        (_normal(str(c.get("name", ""))), str(c.get("version", "")))
        for c in components
        if isinstance(c, dict)
    }
    image_at = {image.path: image for image in images}
    for artefact in artefacts:
        kind = _COMPONENT_TYPE.get(artefact.kind)
        if artefact.kind == "wheel" and artefact.name != "holdfast":
            kind = None if (_normal(artefact.name), artefact.version) in listed else "library"
        if kind is None:
            continue
        properties: list[dict[str, str]] = [
            {"name": "holdfast:bundle-path", "value": artefact.path}
        ]
        component: dict[str, object] = {
            "type": kind,
            "bom-ref": f"holdfast-bundle:{artefact.path}",
            "name": artefact.name,
            "version": artefact.version,
            "hashes": [{"alg": "SHA-256", "content": artefact.sha256}],
            "properties": properties,
        }
        if artefact.kind == "deb":
            component["purl"] = deb_purl(artefact, deb_target)
        image = image_at.get(artefact.path)
        if artefact.kind == "image" and image is not None:
            component["purl"] = oci_purl(image)
            properties.append({"name": "holdfast:image-digest", "value": image.digest})
        components.append(component)
    return sbom


def _normal(name: str) -> str:
    """PEP 503 normalised project name (en_core_web_sm and en-core-web-sm are one project)."""
    return re.sub(r"[-_.]+", "-", name).lower()
