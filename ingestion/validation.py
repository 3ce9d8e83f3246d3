"""Checks a file must pass before it is parsed: type, size, emptiness, archive bombs.

Each failure is an ``InvalidRequestError`` whose message is the reason shown for that one file;
the rest of a batch goes on.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from services.errors import InvalidRequestError

DOC_TYPES: dict[str, str] = {
    ".pdf": "pdf",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".eml": "email",
}
SUPPORTED_SUFFIXES = frozenset(DOC_TYPES)
_ZIP_TYPES = {"docx", "pptx", "xlsx"}
_ZIP_MAGIC = b"PK\x03\x04"
_PDF_MAGIC = b"%PDF-"
# Viewers and pdfminer find the PDF header anywhere in the first KiB: mail gateways and some
# generators leave a few bytes before it, and such a file opens everywhere.
_PDF_HEADER_WINDOW = 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int = 50 * 1024 * 1024
    max_pages: int = 500
    max_unpacked_bytes: int = 200 * 1024 * 1024
    max_compression_ratio: int = 100
    max_archive_members: int = 10_000


def doc_type_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in DOC_TYPES:
        raise InvalidRequestError(f"unsupported file type {suffix or '(none)'}")
    return DOC_TYPES[suffix]


def _check_zip(path: Path, limits: Limits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidRequestError("corrupt file (not a readable Office archive)") from exc
    if len(members) > limits.max_archive_members:
        raise InvalidRequestError(f"archive has {len(members)} members, over the limit")
    unpacked = sum(m.file_size for m in members)
    packed = max(1, sum(m.compress_size for m in members))
    if unpacked > limits.max_unpacked_bytes or unpacked / packed > limits.max_compression_ratio:
        raise InvalidRequestError(
            f"archive unpacks to {unpacked} bytes (ratio {unpacked // packed}:1): "
            "refused as a possible archive bomb"
        )
    names = {m.filename for m in members}
    if "EncryptedPackage" in names or "[Content_Types].xml" not in names:
        raise InvalidRequestError("encrypted or corrupt Office file")


def _has_magic(head: bytes, doc_type: str) -> bool:
    """The file starts the way its type must (a PDF's header may follow a few stray bytes)."""
    if doc_type == "pdf":
        return _PDF_MAGIC in head[:_PDF_HEADER_WINDOW]
    return doc_type not in _ZIP_TYPES or head.startswith(_ZIP_MAGIC)


def validate_file(path: Path, name: str, limits: Limits) -> str:
    """The file's doc type, or an ``InvalidRequestError`` with the reason it is refused."""
    doc_type = doc_type_of(name)
    size = path.stat().st_size
    if size == 0:
        raise InvalidRequestError("empty file")
    if size > limits.max_file_bytes:
        raise InvalidRequestError(f"file is {size} bytes, over the limit {limits.max_file_bytes}")
    with path.open("rb") as fh:
        head = fh.read(_PDF_HEADER_WINDOW)
    if head.startswith(b"\xd0\xcf\x11\xe0") and doc_type in _ZIP_TYPES:
        raise InvalidRequestError("encrypted Office file (password protected)")
    if not _has_magic(head, doc_type):
        raise InvalidRequestError(f"corrupt file (not a {doc_type.upper()})")
    if doc_type in _ZIP_TYPES:
        _check_zip(path, limits)
    if doc_type in {"markdown", "text", "csv", "html", "email"}:
        with path.open("rb") as fh:
            if not fh.read(1 << 16).strip():
                raise InvalidRequestError("empty file")
    return doc_type
