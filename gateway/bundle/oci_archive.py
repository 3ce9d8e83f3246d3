"""Container images in the bundle: read an ``oci-archive`` (a tar of an OCI image layout, as
``holdfast images build`` writes) in one streaming pass, and check it against its
:class:`~gateway.bundle.records.ImageRecord`.

:func:`scan` hashes the whole archive (what SHA256SUMS lists) and, in the same pass, every blob
inside it; :func:`check` is pure: it follows index.json to the image manifest, then to its config
and layers, and names the first thing that does not match in one line (a corrupted layer: "layer 2
of 2 sha256:1a2b3c4d5e6f is altered (its bytes hash to sha256:…)").
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from gateway.bundle.records import ImageRecord

_CHUNK = 1 << 20
_KEEP = 1 << 20  # blobs up to this size are kept (manifests and configs; layers are larger)
REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True, slots=True)
class Blob:
    """What a blob of the archive really is: the SHA-256 of its bytes and their length."""

    sha256: str
    size: int
    data: bytes | None = None  # kept for small blobs only


@dataclass(frozen=True, slots=True)
class ArchiveScan:
    """The facts :func:`check` needs: the archive's index.json and every blob, by file name."""

    index: bytes | None = None
    blobs: dict[str, Blob] = field(default_factory=dict)  # "sha256:<hex of the file name>"
    error: str = ""  # the archive is not a readable tar


class _Hashing:
    """A read-only stream that hashes everything read through it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.hash.update(data)
        return data

    def drain(self) -> str:
        while self.read(_CHUNK):
            pass
        return self.hash.hexdigest()


def _blob(stream: IO[bytes]) -> Blob:
    h = hashlib.sha256()
    size = 0
    kept = bytearray()
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
        if size <= _KEEP:
            kept += chunk
    return Blob(h.hexdigest(), size, bytes(kept) if size <= _KEEP else None)


def scan(stream: IO[bytes]) -> tuple[str, ArchiveScan]:
    """The archive's SHA-256 and what it holds, reading ``stream`` once to its end."""
    reader = _Hashing(stream)
    index: bytes | None = None
    blobs: dict[str, Blob] = {}
    error = ""
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile():
                    continue
                data = tar.extractfile(member)
                if data is None:  # pragma: no cover - regular files always have data
                    continue
                if name == "index.json":
                    index = data.read(_KEEP)
                elif name.startswith("blobs/sha256/"):
                    blobs["sha256:" + name.removeprefix("blobs/sha256/")] = _blob(data)
    except (tarfile.TarError, OSError, EOFError) as exc:
        error = f"not a readable tar ({exc})"
    return reader.drain(), ArchiveScan(index, blobs, error)


def _short(digest: str) -> str:
    return digest[:19]  # sha256: and 12 hex digits


def _json(data: bytes | None) -> dict[str, object] | None:
    try:
        found = json.loads(data or b"")
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _blob_problem(facts: ArchiveScan, what: str, descriptor: object) -> str:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        return f"{what} has no digest"
    digest = str(descriptor["digest"])
    blob = facts.blobs.get(digest)
    if blob is None:
        return f"{what} {_short(digest)} is missing from the archive"
    actual = f"sha256:{blob.sha256}"
    if actual != digest:
        return f"{what} {_short(digest)} is altered (its bytes hash to {_short(actual)})"
    expected = descriptor.get("size")
    if expected != blob.size:
        return f"{what} {_short(digest)} has {blob.size} bytes, its descriptor says {expected}"
    return ""


def check(facts: ArchiveScan, record: ImageRecord) -> str:
    """Empty when the archive holds exactly the image ``record`` names, intact; else the first
    problem, in one line."""
    if facts.error:
        return facts.error
    index = _json(facts.index)
    if index is None:
        return "no readable index.json (not an OCI image archive)"
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or len(manifests) != 1:
        return "index.json must name exactly one image manifest"
    descriptor = manifests[0]
    if not isinstance(descriptor, dict):
        return "index.json's manifest entry is not an object"
    digest = descriptor.get("digest")
    if digest != record.digest:
        return f"index.json names {digest}, manifest.json records {record.digest}"
    ref = (
        descriptor.get("annotations", {}).get(REF_NAME)
        if isinstance(descriptor.get("annotations"), dict)
        else None
    )
    if ref not in (None, record.reference, record.tag):
        return f"index.json names the image {ref}, manifest.json records {record.reference}"
    problem = _blob_problem(facts, "image manifest", descriptor)
    if problem:
        return problem
    manifest = _json(facts.blobs[record.digest].data)
    if manifest is None:
        return f"image manifest {_short(record.digest)} is not JSON"
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        return f"image manifest {_short(record.digest)} lists no layers"
    problem = _blob_problem(facts, "image config", manifest.get("config"))
    for number, layer in enumerate(layers, start=1):
        problem = problem or _blob_problem(facts, f"layer {number} of {len(layers)}", layer)
    return problem


def image_size(facts: ArchiveScan, digest: str) -> int:
    """Bytes of the manifest, its config and its layers (what a registry stores)."""
    manifest = _json(facts.blobs[digest].data) if digest in facts.blobs else None
    if manifest is None:
        return 0
    descriptors = [manifest.get("config"), *(manifest.get("layers") or [])]  # type: ignore[misc]
    digests = [d.get("digest") for d in descriptors if isinstance(d, dict)]
    sizes = [facts.blobs[d].size for d in digests if isinstance(d, str) and d in facts.blobs]
    return facts.blobs[digest].size + sum(sizes)


class ImageInputError(Exception):
    """The folder given to ``--images`` is not a complete, intact `holdfast images build` output."""


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """One archive of ``holdfast images build``, checked: its record (path inside the bundle),
    the file, its SHA-256, and the image's CycloneDX SBOM beside it when there is one."""

    record: ImageRecord
    archive: Path
    sha256: str
    sbom: Path | None


def collect(folder: Path, bundle_dir: str) -> list[BuiltImage]:
    """Every image ``folder/images.json`` lists, each archive scanned and checked against it (a
    stale or damaged archive stops the build here, not at the customer's registry)."""
    summary_file = folder / "images.json"
    try:
        summary = json.loads(summary_file.read_text())
        entries = list(summary["images"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImageInputError(
            f"{summary_file}: not the output of `holdfast images build` ({exc})"
        ) from exc
    if not entries:
        raise ImageInputError(f"{summary_file} lists no images")
    built: list[BuiltImage] = []
    for entry in entries:
        try:
            name, tag, digest = str(entry["name"]), str(entry["tag"]), str(entry["digest"])
            archive = folder / Path(str(entry["archive"])).name
        except (KeyError, TypeError) as exc:
            raise ImageInputError(f"{summary_file}: an entry lacks {exc}") from exc
        if not archive.is_file():
            raise ImageInputError(f"{name}: {archive} not found")
        with archive.open("rb") as fh:
            sha256, facts = scan(fh)
        if entry.get("archive_sha256") not in (None, sha256):
            raise ImageInputError(f"{name}: {archive.name} changed since images.json was written")
        try:
            record = ImageRecord(
                name=name,
                tag=tag,
                digest=digest,
                path=f"{bundle_dir}/{archive.name}",
                size=image_size(facts, digest),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ImageInputError(f"{name}: {where}: {first['msg']}") from exc
        problem = check(facts, record)
        if problem:
            raise ImageInputError(f"{name}: {archive.name}: {problem}")
        sbom = folder / f"{name}.cdx.json"
        built.append(BuiltImage(record, archive, sha256, sbom if sbom.is_file() else None))
    return built
