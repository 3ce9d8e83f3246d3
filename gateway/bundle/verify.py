"""``holdfast bundle verify``: check the bundle's signature first (:func:`check_signature`), then
every file of the directory or archive against ``SHA256SUMS`` and ``manifest.json``, and name
exactly what is missing, altered or unexpected. Each container image archive (``images/``) is also
opened, in the same read: its manifest digest must be the one manifest.json records and every blob
must match its digest (a corrupted layer is named, in one line).

The comparison (:func:`compare`) is pure; :func:`read_bundle` does the I/O for either shape.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from gateway.bundle import oci_archive
from gateway.bundle.checksums import SumsFormatError, parse_sums, sha256_file, sha256_stream
from gateway.bundle.records import (
    IMAGE_ARCHIVE_SUFFIX,
    IMAGES_DIR,
    MANIFEST_NAME,
    SUMS_NAME,
    Manifest,
    Problem,
    VerifyReport,
)
from gateway.bundle.signing import SUMS_SIG_NAME, verify_signature


class BundleFormatError(Exception):
    """The bundle cannot be read at all (no SHA256SUMS, unreadable archive, broken manifest)."""


@dataclass(frozen=True, slots=True)
class BundleContents:
    """What verify needs to know about a bundle: its two index files and every file's digest."""

    sums_text: str
    manifest_text: str | None
    digests: dict[str, str]
    images: dict[str, oci_archive.ArchiveScan] = field(default_factory=dict)  # by path


def _is_image(rel: str) -> bool:
    return rel.startswith(f"{IMAGES_DIR}/") and rel.endswith(IMAGE_ARCHIVE_SUFFIX)


def _label(path: str, manifest: Manifest | None) -> str:
    artefact = manifest.by_path().get(path) if manifest else None
    return f"{artefact.kind} {artefact.name} {artefact.version}" if artefact else ""


def compare(contents: BundleContents) -> VerifyReport:
    """Every finding, in a stable order: SHA256SUMS entries, then manifest, then extra files."""
    try:
        sums = parse_sums(contents.sums_text)
    except SumsFormatError as exc:
        raise BundleFormatError(str(exc)) from exc
    manifest: Manifest | None = None
    problems: list[Problem] = []
    if contents.manifest_text is None:
        problems.append(Problem(MANIFEST_NAME, "missing", "the bundle has no manifest"))
    else:
        try:
            manifest = Manifest.model_validate(json.loads(contents.manifest_text))
        except (ValueError, ValidationError) as exc:
            problems.append(Problem(MANIFEST_NAME, "altered", f"not a valid manifest: {exc}"))
    for path, expected in sorted(sums.items()):
        actual = contents.digests.get(path)
        if actual is None:
            problems.append(Problem(path, "missing", _label(path, manifest)))
        elif actual != expected:
            problems.append(Problem(path, "altered", _label(path, manifest)))
    if manifest is not None:
        if MANIFEST_NAME not in sums:
            problems.append(Problem(MANIFEST_NAME, "unlisted", "not covered by SHA256SUMS"))
        for artefact in manifest.artefacts:
            listed = sums.get(artefact.path)
            if listed is None:
                problems.append(Problem(artefact.path, "unlisted", "in manifest, not SHA256SUMS"))
            elif listed != artefact.sha256:
                problems.append(
                    Problem(artefact.path, "altered", "manifest and SHA256SUMS disagree")
                )
        problems += _image_problems(contents, manifest)
    for path in sorted(set(contents.digests) - set(sums) - {SUMS_NAME, SUMS_SIG_NAME}):
        problems.append(Problem(path, "unexpected", "not listed in SHA256SUMS"))
    return VerifyReport(checked=len(sums), problems=problems)


def _image_problems(contents: BundleContents, manifest: Manifest) -> list[Problem]:
    """Each image the manifest records: an artefact of kind image, and its archive holds exactly
    that manifest digest with every blob intact (a missing archive is SHA256SUMS' finding)."""
    problems: list[Problem] = []
    artefacts = manifest.by_path()
    for image in manifest.images:
        artefact = artefacts.get(image.path)
        if artefact is None or artefact.kind != "image":
            problems.append(Problem(image.path, "unlisted", f"image {image.name}: no artefact"))
            continue
        facts = contents.images.get(image.path)
        if facts is None:
            continue
        reason = oci_archive.check(facts, image)
        if reason:
            problems.append(Problem(image.path, "altered", f"image {image.reference}: {reason}"))
    recorded = {image.path for image in manifest.images}
    for path in sorted(set(contents.images) - recorded):
        if path in artefacts:
            problems.append(Problem(path, "unlisted", "image archive not in manifest's images"))
    return problems


def _read_directory(root: Path, on_file: Callable[[str], None]) -> BundleContents:
    sums_file = root / SUMS_NAME
    if not sums_file.is_file():
        raise BundleFormatError(f"{root} has no {SUMS_NAME}; is it a Holdfast bundle?")
    digests: dict[str, str] = {}
    images: dict[str, oci_archive.ArchiveScan] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        on_file(rel)
        if path.is_file() and _is_image(rel):
            with path.open("rb") as fh:
                digests[rel], images[rel] = oci_archive.scan(fh)
        else:
            digests[rel] = sha256_file(path) if path.is_file() else "symlink"
    manifest = root / MANIFEST_NAME
    return BundleContents(
        sums_text=sums_file.read_text(encoding="utf-8"),
        manifest_text=manifest.read_text(encoding="utf-8") if manifest.is_file() else None,
        digests=digests,
        images=images,
    )


def _read_archive(archive: Path, on_file: Callable[[str], None]) -> BundleContents:
    digests: dict[str, str] = {}
    texts: dict[str, str] = {}
    images: dict[str, oci_archive.ArchiveScan] = {}
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                parts = member.name.split("/", 1)
                if member.isdir() or len(parts) < 2:
                    continue
                rel = parts[1]  # everything sits under one top folder, holdfast-bundle-<version>
                on_file(rel)
                if not member.isfile():
                    digests[rel] = "non-regular"
                    continue
                stream = tar.extractfile(member)
                if stream is None:  # pragma: no cover - isfile() members always have data
                    continue
                if rel in (SUMS_NAME, MANIFEST_NAME):
                    data = stream.read()
                    texts[rel] = data.decode("utf-8", errors="replace")
                    digests[rel] = sha256_stream(io.BytesIO(data))
                elif _is_image(rel):
                    digests[rel], images[rel] = oci_archive.scan(stream)
                else:
                    digests[rel] = sha256_stream(stream)  # type: ignore[arg-type]
    except (tarfile.TarError, OSError) as exc:
        raise BundleFormatError(f"cannot read archive {archive}: {exc}") from exc
    if SUMS_NAME not in texts:
        raise BundleFormatError(f"{archive} has no {SUMS_NAME}; is it a Holdfast bundle?")
    return BundleContents(texts[SUMS_NAME], texts.get(MANIFEST_NAME), digests, images)


def read_bundle(path: Path, on_file: Callable[[str], None] = lambda _: None) -> BundleContents:
    if path.is_dir():
        return _read_directory(path, on_file)
    if path.is_file():
        return _read_archive(path, on_file)
    raise BundleFormatError(f"{path} does not exist")


def check_signature(path: Path, public_key: Path) -> str:
    """The signature check that comes before anything is read: over the archive itself (its
    ``.sig`` beside it), or over a folder's ``SHA256SUMS`` (which then vouches for every file).

    Raises :class:`~gateway.bundle.signing.SignatureError`; returns gpgv's good-signature line."""
    if path.is_dir():
        return verify_signature(path / SUMS_NAME, public_key)
    if path.is_file():
        return verify_signature(path, public_key)
    raise BundleFormatError(f"{path} does not exist")


def verify(path: Path, on_file: Callable[[str], None] = lambda _: None) -> VerifyReport:
    """Read the bundle at ``path`` (directory or tar archive) and compare it with its indexes."""
    return compare(read_bundle(path, on_file))
