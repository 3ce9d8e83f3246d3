"""What the images are, as plain data and pure functions: names, labels, the runtime subset of
the lock, the APT sources to build from, the Debian package list of a root filesystem. No I/O
beyond reading the text the caller passes in."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

GATEWAY = "holdfast-gateway"
WEAVIATE = "holdfast-weaviate"
OLLAMA = "holdfast-ollama"
MODELS = "holdfast-models"
VLLM = "holdfast-vllm"
# What `holdfast images build` builds unless told otherwise.
IMAGES = (GATEWAY, WEAVIATE, OLLAMA, MODELS)
# For GPU nodes only, built when named (`--only holdfast-vllm`): about 9 GB of CUDA wheels.
GPU_IMAGES = (VLLM,)
ALL_IMAGES = IMAGES + GPU_IMAGES

# The unprivileged account every image runs as (created in the base root filesystem).
UID = 10001
USER = "holdfast"
SBOM_PATH = "usr/share/holdfast/sbom.cdx.json"
VENV = "/opt/holdfast/venv"
HOLDFAST_HOME = "/var/lib/holdfast"
MODELS_DIR = "/models"


class ImagesError(Exception):
    """A step of the image build failed; the message says which and why, in one line."""


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The runtime half of an image's OCI config."""

    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = "/"
    ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    licenses: str = "Proprietary"
    title: str = ""
    description: str = ""
    version: str = ""
    extra_labels: Mapping[str, str] = field(default_factory=dict)


def rfc3339(epoch: int) -> str:
    """``2026-12-04T05:00:00Z`` for a Unix time (the images' ``created``)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(
    config: ImageConfig, *, version: str, revision: str, source: str, epoch: int
) -> dict[str, str]:
    """The ``org.opencontainers.image.*`` annotations every image carries (as config labels)."""
    found = {
        "org.opencontainers.image.title": config.title,
        "org.opencontainers.image.description": config.description,
        "org.opencontainers.image.version": config.version or version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.licenses": config.licenses,
        "org.opencontainers.image.created": rfc3339(epoch),
        "org.opencontainers.image.vendor": "Holdfast",
    }
    found.update(config.extra_labels)
    return {k: v for k, v in sorted(found.items()) if v}


def normal_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(
    roots: Iterable[str],
    requires_of: Callable[[str], list[str] | None],
    environment: Mapping[str, str] | None = None,
) -> set[str]:
    """Every project a set of requirement strings pulls in at run time (extras followed only
    where a requirement names them), as normalised names. ``requires_of(name)`` gives a project's
    ``Requires-Dist`` lines, or None when the project is unknown (then it is still listed)."""
    env = dict(environment) if environment else cast(dict[str, str], default_environment())
    seen: set[str] = set()
    extras_seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = []  # (requirement string, extra it was reached through)
    todo += [(r, "") for r in roots]
    while todo:
        text, via_extra = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        marker_env: Any = {**env, "extra": via_extra}
        if req.marker is not None and not req.marker.evaluate(marker_env):
            continue
        name = normal_name(req.name)
        wanted = {""} | {normal_name(e) for e in req.extras}
        new = {e for e in wanted if (name, e) not in extras_seen}
        if not new:
            continue
        seen.add(name)
        extras_seen.update((name, e) for e in new)
        for line in requires_of(name) or []:
            for extra in new:
                todo.append((line, extra))
    return seen


def apt_sources(texts: Mapping[str, str]) -> list[str]:
    """One-line ``deb URI SUITE COMPONENT...`` entries from the machine's APT configuration:
    ``texts`` maps a file name to its content (``*.list`` one-line format, ``*.sources`` deb822).
    Only ``deb`` entries; options such as ``[signed-by=...]`` are dropped (mmdebstrap checks
    against the keyrings the host trusts)."""
    lines: list[str] = []
    for name, text in sorted(texts.items()):
        if name.endswith(".sources"):
            lines += _deb822(text)
            continue
        for raw in text.splitlines():
            line = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                lines.append(" ".join(line))
    return lines


def _deb822(text: str) -> list[str]:
    out: list[str] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1].isspace() and key:
                fields[key] += " " + raw.strip()
            elif ":" in raw:
                key, value = raw.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        components = fields.get("components", "")
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                out.append(" ".join(["deb", uri, suite, *components.split()]))
    return out


@dataclass(frozen=True, slots=True)
class DebPackage:
    name: str
    version: str
    arch: str

    @property
    def purl(self) -> str:
        return f"pkg:deb/debian/{self.name}@{self.version}?arch={self.arch}"


def installed_debs(status: str) -> list[DebPackage]:
    """The packages a dpkg status file lists as installed, sorted by name."""
    found: list[DebPackage] = []
    for stanza in re.split(r"\n\s*\n", status):
        fields: dict[str, str] = {}
        for raw in stanza.splitlines():
            if ":" in raw and not raw[:1].isspace():
                key, value = raw.split(":", 1)
                fields[key.strip()] = value.strip()
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            version, arch = fields.get("Version", ""), fields.get("Architecture", "")
            found.append(DebPackage(fields["Package"], version, arch))
    return sorted(found, key=lambda p: p.name)


def deb_components(packages: Iterable[DebPackage]) -> list[dict[str, object]]:
    """CycloneDX components for Debian packages (type library, with a purl)."""
    return [
        {
            "type": "library",
            "bom-ref": p.purl,
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
        }
        for p in packages
    ]
