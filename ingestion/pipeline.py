"""Ingest files: parse -> chunk -> redact -> embed -> index, one file at a time.

A file that cannot be read is rejected with a reason and the batch goes on; the chunks of a
re-ingested document are overwritten in place and only then are its stale chunks deleted, so a
failure half-way never leaves a document with fewer chunks than before.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ingestion.chunking import chunk_sections
from ingestion.markdown_sections import parse_markdown
from services.errors import InvalidRequestError
from services.ports import Embedder, Redactor, Store
from services.records import Chunk

SUPPORTED_SUFFIXES = {".md", ".markdown"}


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    max_tokens: int = 200
    overlap_tokens: int = 32


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    status: str  # indexed | rejected
    doc_id: str = ""
    chunks: int = 0
    stale_deleted: int = 0
    reason: str = ""


@dataclass(slots=True)
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    redactions: Counter[str] = field(default_factory=Counter)

    @property
    def indexed(self) -> int:
        return sum(1 for f in self.files if f.status == "indexed")

    @property
    def rejected(self) -> int:
        return sum(1 for f in self.files if f.status == "rejected")

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files)


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def doc_id_for(path: Path) -> str:
    """Stable across edits of the file, so a new version replaces the old one."""
    return _sha("file", str(path.resolve()))[:32]


def _read_text(path: Path) -> str:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InvalidRequestError(f"unsupported file type {path.suffix or '(none)'}")
    raw = path.read_bytes()
    if not raw.strip():
        raise InvalidRequestError("empty file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("not UTF-8 text") from exc


def build_chunks(
    path: Path,
    text: str,
    *,
    groups: Sequence[str],
    policy: ChunkingPolicy,
    count_tokens: Callable[[str], int],
) -> list[Chunk]:
    doc_id = doc_id_for(path)
    parsed = parse_markdown(text, fallback_title=path.stem)
    pieces = chunk_sections(
        parsed.sections,
        max_tokens=policy.max_tokens,
        overlap_tokens=policy.overlap_tokens,
        count=count_tokens,
    )
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    now = datetime.now(UTC)
    chunks = []
    for position, piece in enumerate(pieces):
        content_hash = _sha(piece.text)
        chunks.append(
            Chunk(
                chunk_id=_sha(doc_id, str(position), content_hash)[:32],
                doc_id=doc_id,
                text=piece.text,
                source=str(path.resolve()),
                title=parsed.title,
                section=piece.section.heading,
                position=position,
                content_hash=content_hash,
                access_groups=tuple(groups),
                parent_id=_sha(doc_id, piece.section.heading)[:32],
                doc_type="markdown",
                modified_at=modified,
                ingested_at=now,
            )
        )
    return chunks


def embedding_input(chunk: Chunk) -> str:
    """What the embedding model reads: the heading path gives a short chunk its context."""
    heading = " > ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{heading}\n{chunk.text}" if heading else chunk.text


def _redacted(chunks: list[Chunk], redactor: Redactor, tally: Counter[str]) -> list[Chunk]:
    """Redact every text field that is stored or embedded: body, title and section path."""
    cache: dict[str, str] = {}

    def clean(text: str, *, count: bool) -> str:
        if text not in cache:
            result = redactor.redact(text)
            if count:
                tally.update(result.counts)
            cache[text] = result.text
        return cache[text]

    out = []
    for chunk in chunks:
        text = clean(chunk.text, count=True)
        title, section = clean(chunk.title, count=True), clean(chunk.section, count=True)
        if (text, title, section) != (chunk.text, chunk.title, chunk.section):
            chunk = replace(chunk, text=text, title=title, section=section, content_hash=_sha(text))
        out.append(chunk)
    return out


def ingest_files(
    paths: Iterable[Path],
    *,
    groups: Sequence[str],
    store: Store,
    embedder: Embedder,
    redactor: Redactor | None,
    policy: ChunkingPolicy,
    on_file: Callable[[FileResult], None] | None = None,
) -> IngestReport:
    """Index every readable file; ``redactor=None`` means redaction is switched off."""
    clean_groups = [g.strip() for g in groups if g.strip()]
    if not clean_groups:
        raise InvalidRequestError("a document needs at least one access group")
    report = IngestReport()
    for path in paths:
        try:
            text = _read_text(path)
            chunks = build_chunks(
                path, text, groups=clean_groups, policy=policy, count_tokens=embedder.count_tokens
            )
            if not chunks:
                raise InvalidRequestError("no text content")
        except (InvalidRequestError, OSError) as exc:
            result = FileResult(source=str(path), status="rejected", reason=str(exc))
        else:
            if redactor is not None:
                chunks = _redacted(chunks, redactor, report.redactions)
            vectors = embedder.embed_documents([embedding_input(c) for c in chunks])
            store.upsert(chunks, vectors)
            stale = store.delete_stale(chunks[0].doc_id, [c.chunk_id for c in chunks])
            result = FileResult(
                source=str(path),
                status="indexed",
                doc_id=chunks[0].doc_id,
                chunks=len(chunks),
                stale_deleted=stale,
            )
        report.files.append(result)
        if on_file is not None:
            on_file(result)
    return report
