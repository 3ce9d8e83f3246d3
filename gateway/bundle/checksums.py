"""SHA-256 digests and the ``SHA256SUMS`` file (the format ``sha256sum -c`` reads)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def sha256_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_stream(fh)


def format_sums(entries: Iterable[tuple[str, str]]) -> str:
    """``<digest>  <path>`` lines, sorted by path."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(entries))


class SumsFormatError(ValueError):
    """A line of SHA256SUMS that is not ``<64 hex>  <path>``."""


def parse_sums(text: str) -> dict[str, str]:
    """Path -> digest. Accepts the binary-mode marker ``*`` that ``sha256sum -b`` writes."""
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, path = line.partition("  ")
        if not sep:
            digest, sep, path = line.partition(" *")
        if not sep or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise SumsFormatError(f"SHA256SUMS line {number} is not '<sha256>  <path>'")
        sums[path] = digest
    return sums
