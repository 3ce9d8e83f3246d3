"""Typed records at the bundle's boundaries: the manifest on disk and the verify report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MANIFEST_NAME = "manifest.json"
SUMS_NAME = "SHA256SUMS"
SBOM_NAME = "sbom.cdx.json"
FORMAT_VERSION = 1
IMAGES_DIR = "images"  # OCI archives of `holdfast images build`, when the bundle carries them
IMAGE_ARCHIVE_SUFFIX = ".oci.tar"
VLLM_DIR = "vllm"  # the GPU model server's wheels, lock and requirements.bundle.txt (--with-vllm)

ArtefactKind = Literal[
    "wheel", "binary", "deb", "model", "chart", "playbook", "lock", "sample", "sbom", "image"
]


class Artefact(BaseModel):
    """One file in the bundle: where it is, what it is, which version, and its digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: str = Field(description="Path relative to the bundle root, with forward slashes.")
    kind: ArtefactKind
    name: str = Field(description="What the file is, e.g. torch, weaviate-server, chat-model.")
    version: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class ImageRecord(BaseModel):
    """One container image in the bundle: the ``oci-archive`` that holds it and the digest of its
    manifest, which is what the customer's registry serves it by and what Helm pins."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(
        pattern=r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$",
        description="Repository name under the registry, e.g. holdfast-gateway.",
    )
    tag: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", description="e.g. 0.1.0.")
    digest: str = Field(
        pattern=r"^sha256:[0-9a-f]{64}$", description="Digest of the image manifest."
    )
    path: str = Field(description="The archive, relative to the bundle root (an artefact).")
    size: int = Field(ge=0, description="Bytes of the manifest, config and layers (compressed).")

    @property
    def reference(self) -> str:
        """``name:tag``: the reference the archive's index.json names."""
        return f"{self.name}:{self.tag}"


class Manifest(BaseModel):
    """``manifest.json``: the bundle's table of contents."""

    model_config = ConfigDict(extra="forbid")
    format_version: int = FORMAT_VERSION
    holdfast_version: str
    bundle_version: str = Field(
        "",
        description="Names the bundle folder and the gateway's virtualenv on hosts; a rebuild "
        "of the same Holdfast version (e.g. patched wheels) gets its own. Empty: holdfast_version.",
    )
    created: str = Field(description="UTC time of the build, ISO 8601.")
    python_version: str = Field(description="Target Python, e.g. 3.11.")
    platform: str = Field(description="Target platform tag, e.g. manylinux_2_28_x86_64.")
    deb_target: str = Field(
        "",
        description="Release the deb artefacts are for, as distribution/codename/architecture "
        "(e.g. debian/bookworm/amd64); empty: the bundle carries no Debian packages.",
    )
    deb_packages: list[str] = Field(
        default_factory=list,
        description="What hosts install from debs/ (with debs/Packages as the only package "
        "source, apt adds the rest of the closure only where a host lacks it).",
    )
    artefacts: list[Artefact]
    images: list[ImageRecord] = Field(
        default_factory=list,
        description="Container images under images/ (empty: built without --images).",
    )
    vllm_version: str = Field(
        "",
        description="vLLM version whose wheels are under vllm/ (its own lock and "
        "requirements.bundle.txt, for the virtualenv of the GPU model server); empty: built "
        "without --with-vllm.",
    )

    @property
    def label(self) -> str:
        """The bundle's version: what upgrades and rollbacks tell apart."""
        return self.bundle_version or self.holdfast_version

    def by_path(self) -> dict[str, Artefact]:
        return {a.path: a for a in self.artefacts}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of verify: a file that is missing, altered or not listed anywhere."""

    path: str
    status: Literal["missing", "altered", "unexpected", "unlisted"]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    checked: int
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems
