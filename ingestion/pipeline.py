"""Ingest files: validate -> parse -> chunk -> redact -> embed -> index, one file at a time.

A file that cannot be read is rejected with a reason and the batch goes on; nothing already
indexed is touched by a rejected file. A file whose bytes are unchanged since it was indexed is
skipped (file hash), and identical bytes already indexed under another source for the same groups
are not indexed twice. A changed file is parsed, redacted and embedded first (the slow, fallible
part); only then are its old chunks deleted and the new ones written, so a search sees the old
version or the new one, never both.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from ingestion.chunking import chunk_sections
from ingestion.embedding import EmbeddingPolicy, embed_batches
from ingestion.parsing import parse_file
from ingestion.validation import SUPPORTED_SUFFIXES, Limits, validate_file
from services.errors import InvalidRequestError
from services.ports import DocumentStore, Embedder, Redactor
from services.records import Chunk, Redaction

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ChunkingPolicy",
    "FileResult",
    "IngestReport",
    "ingest_file",
    "ingest_files",
]


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    max_tokens: int = 200
    overlap_tokens: int = 32


@dataclass(frozen=True, slots=True)
class FileResult:
    source: str
    status: str  # indexed | unchanged | duplicate | rejected | failed
    doc_id: str = ""
    chunks: int = 0
    stale_deleted: int = 0
    reason: str = ""
    redactions: dict[str, int] = field(default_factory=dict)
    ocr_pages: int = 0

    @property
    def ok(self) -> bool:
        return self.status in {"indexed", "unchanged", "duplicate"}


@dataclass(slots=True)
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    redactions: Counter[str] = field(default_factory=Counter)

    @property
    def indexed(self) -> int:
        return sum(1 for f in self.files if f.status == "indexed")

    @property
    def rejected(self) -> int:
        return sum(1 for f in self.files if not f.ok)

    @property
    def chunks(self) -> int:
        return sum(f.chunks for f in self.files)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    groups: tuple[str, ...]
    redact: bool = True
    chunking: ChunkingPolicy = field(default_factory=ChunkingPolicy)
    limits: Limits = field(default_factory=Limits)
    embedding: EmbeddingPolicy = field(default_factory=EmbeddingPolicy)
    title: str = ""  # overrides the parsed title when set (upload metadata)


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def doc_id_for_source(source: str) -> str:
    """Stable across edits of the file, so a new version replaces the old one."""
    return _sha("file", source)[:32]


def doc_id_for(path: Path) -> str:
    return doc_id_for_source(str(path.resolve()))


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_chunks(
    path: Path,
    *,
    source: str,
    doc_type: str,
    groups: Sequence[str],
    policy: ChunkingPolicy,
    limits: Limits,
    count_tokens: Callable[[str], int],
    hashed: str,
    title: str = "",
) -> tuple[list[Chunk], int]:
    """Chunks of one validated file, and how many pages went through OCR."""
    doc_id = doc_id_for_source(source)
    parsed = parse_file(path, doc_type, name=source, limits=limits)
    pieces = chunk_sections(
        parsed.document.sections,
        max_tokens=policy.max_tokens,
        overlap_tokens=policy.overlap_tokens,
        count=count_tokens,
    )
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    now = datetime.now(UTC)
    doc_title = title or parsed.document.title
    chunks = []
    for position, piece in enumerate(pieces):
        content_hash = _sha(piece.text)
        chunks.append(
            Chunk(
                chunk_id=_sha(doc_id, str(position), content_hash)[:32],
                doc_id=doc_id,
                text=piece.text,
                source=source,
                title=doc_title,
                section=piece.section.heading,
                position=position,
                content_hash=content_hash,
                access_groups=tuple(groups),
                parent_id=_sha(doc_id, piece.section.heading)[:32],
                doc_type=doc_type,
                page=piece.page,
                page_end=piece.page_end,
                modified_at=modified,
                ingested_at=now,
                file_hash=hashed,
            )
        )
    return chunks, parsed.ocr_pages


def embedding_input(chunk: Chunk) -> str:
    """What the embedding model reads: the heading path gives a short chunk its context."""
    heading = " > ".join(part for part in (chunk.title, chunk.section) if part)
    return f"{heading}\n{chunk.text}" if heading else chunk.text


def _redact_all(redactor: Redactor, texts: list[str]) -> list[Redaction]:
    many = getattr(redactor, "redact_many", None)
    if many is not None:
        return list(many(texts))
    return [redactor.redact(t) for t in texts]


def redact_chunks(chunks: list[Chunk], redactor: Redactor, tally: Counter[str]) -> list[Chunk]:
    """Redact every text field that is stored or embedded: body, title and section path.
    Only counts per entity type are kept, never the values."""
    unique = list(dict.fromkeys(t for c in chunks for t in (c.text, c.title, c.section)))
    cleaned = dict(zip(unique, _redact_all(redactor, unique), strict=True))
    for result in cleaned.values():
        tally.update(result.counts)
    out = []
    for chunk in chunks:
        text, title, section = (cleaned[t].text for t in (chunk.text, chunk.title, chunk.section))
        if (text, title, section) != (chunk.text, chunk.title, chunk.section):
            chunk = replace(chunk, text=text, title=title, section=section, content_hash=_sha(text))
        out.append(chunk)
    return out


def clean_groups(groups: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(g.strip() for g in groups if g.strip()))
    if not cleaned:
        raise InvalidRequestError("a document needs at least one access group")
    return cleaned


def ingest_file(
    path: Path,
    *,
    source: str,
    options: IngestOptions,
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
) -> FileResult:
    """Index one file. Bad content gives a ``rejected`` result; a backend failure raises."""
    doc_id = doc_id_for_source(source)
    try:
        doc_type = validate_file(path, source, options.limits)
        hashed = file_hash(path)
    except (InvalidRequestError, OSError) as exc:
        return FileResult(source=source, status="rejected", doc_id=doc_id, reason=str(exc))
    if store.document_hash(doc_id) == hashed:
        return FileResult(source=source, status="unchanged", doc_id=doc_id)
    for twin in store.documents_with_hash(hashed):
        if twin.doc_id != doc_id and set(twin.access_groups) == set(options.groups):
            return FileResult(
                source=source,
                status="duplicate",
                doc_id=twin.doc_id,
                reason=f"same as {twin.source}",
            )
    try:
        chunks, ocr_pages = build_chunks(
            path,
            source=source,
            doc_type=doc_type,
            groups=options.groups,
            policy=options.chunking,
            limits=options.limits,
            count_tokens=embedder.count_tokens,
            hashed=hashed,
            title=options.title,
        )
        if not chunks:
            raise InvalidRequestError("no text content")
    except (InvalidRequestError, OSError) as exc:
        return FileResult(source=source, status="rejected", doc_id=doc_id, reason=str(exc))
    tally: Counter[str] = Counter()
    if options.redact:
        if redactor is None:
            raise InvalidRequestError("redaction was asked for but no redactor is configured")
        chunks = redact_chunks(chunks, redactor, tally)
    vectors = embed_batches(embedder, [embedding_input(c) for c in chunks], options.embedding)
    stale = store.delete_document(doc_id)
    store.upsert(chunks, vectors)
    return FileResult(
        source=source,
        status="indexed",
        doc_id=doc_id,
        chunks=len(chunks),
        stale_deleted=stale,
        redactions=dict(tally),
        ocr_pages=ocr_pages,
    )


def ingest_files(
    paths: Iterable[Path],
    *,
    groups: Sequence[str],
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
    policy: ChunkingPolicy,
    on_file: Callable[[FileResult], None] | None = None,
    limits: Limits | None = None,
) -> IngestReport:
    """Index every readable file in-process; ``redactor=None`` means redaction is off."""
    options = IngestOptions(
        groups=clean_groups(groups),
        redact=redactor is not None,
        chunking=policy,
        limits=limits or Limits(),
    )
    report = IngestReport()
    for path in paths:
        result = ingest_file(
            path,
            source=str(path.resolve()),
            options=options,
            store=store,
            embedder=embedder,
            redactor=redactor,
        )
        report.redactions.update(result.redactions)
        report.files.append(result)
        if on_file is not None:
            on_file(result)
    return report
