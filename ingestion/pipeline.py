"""Ingest files: validate -> parse -> chunk -> redact -> embed -> index, a batch of files at a time.

Files are batched so that the slow stages run on many chunks at once: one redaction call (spread
over the redaction pool's processes), full embedding batches across files, one store lookup of
the batch's known hashes, one delete and bulk writes. Per-file semantics are those of one file
at a time:

- a file that cannot be read is rejected with a reason and the batch goes on; nothing already
  indexed is touched by a rejected file;
- a file whose bytes are unchanged since it was indexed is skipped (file hash), and identical
  bytes already indexed (or earlier in the batch) under another source for the same groups are
  not indexed twice;
- a changed file is parsed, redacted and embedded first (the slow, fallible part); then its new
  version is written beside the old one, and only then is the old one deleted, so a failure at
  any point leaves the old version or the new one whole, searchable and deletable (a search may
  see both for the moment between the write and the delete; ``ingestion.indexing``);
- a document is its source name within its access groups (``ingestion.identity``): an upload
  replaces a same-named document of other groups only when those groups overlap the upload's
  and the uploader may write every one of them; otherwise both stay, and nothing in the result
  says the other exists.
"""

from __future__ import annotations

import functools
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from opentelemetry.trace import Tracer

from ingestion.chunking import chunk_sections, window_budget
from ingestion.embedding import EmbeddingPolicy, embed_batches, embedding_heading, embedding_text
from ingestion.identity import Identity
from ingestion.indexing import (
    delete_documents,
    indexed_hashes,
    replace_documents,
    replaceable_namesakes,
    twins_by_hash,
)
from ingestion.parsing import parse_file
from ingestion.redaction import redact_chunks, redact_groups
from ingestion.tracing import entity_attributes, ingestion_tracer
from ingestion.validation import SUPPORTED_SUFFIXES, Limits, validate_file
from services.errors import InvalidRequestError
from services.ports import DocumentStore, Embedder, Redactor
from services.records import Chunk
from services.redaction_profile import RedactionProfile

__all__ = [
    "SUPPORTED_SUFFIXES",
    "ChunkingPolicy",
    "FileResult",
    "IngestReport",
    "ingest_batch",
    "ingest_file",
    "ingest_files",
    "redact_chunks",
]

BATCH_FILES = 16  # files per in-process batch; jobs take theirs from ingestion.batch_files
# Entered around each batch's store writes and deletes: the gateway passes a lease on its write
# fence, so that a reindex's last re-sync and alias switch never interleave with them.
WriteLease = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    """``max_tokens`` bounds what the embedding model reads per chunk, title and section path
    included; ``window_tokens`` is the model's input window when known (the budget never
    exceeds it, less the model's special tokens)."""

    max_tokens: int = 200
    overlap_tokens: int = 32
    window_tokens: int | None = None


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
    identity: Identity
    # the groups the uploader may write; None: every group (an admin, or the local CLI)
    writer_groups: tuple[str, ...] | None = None
    redact: bool = True
    profile: RedactionProfile | None = None  # None: the redactor's own default
    chunking: ChunkingPolicy = field(default_factory=ChunkingPolicy)
    limits: Limits = field(default_factory=Limits)
    embedding: EmbeddingPolicy = field(default_factory=EmbeddingPolicy)
    title: str = ""  # overrides the parsed title when set (upload metadata)


#: A format's parser revision, raised when its parsing changes what is indexed (2: Word text
#: boxes and notes, speaker notes, Excel number formats and autofilters, ragged CSV rows,
#: Markdown front matter). The revision is part of the file's hash, so a file indexed by an
#: older parser counts as changed and its next ingest parses it again; formats not listed keep
#: the hashes they had.
PARSER_REVISIONS: dict[str, int] = {"docx": 2, "pptx": 2, "xlsx": 2, "csv": 2, "markdown": 2}


def file_hash(path: Path, identity: Identity, doc_type: str = "") -> str:
    """The file's keyed hash: identical bytes are recognised, and the bytes cannot be guessed;
    with its format's parser revision, if any."""
    with path.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    revision = PARSER_REVISIONS.get(doc_type)
    return identity.file_hash(digest if revision is None else f"{digest}+parser{revision}")


def with_ids(chunks: Sequence[Chunk], identity: Identity) -> list[Chunk]:
    """``chunks`` with ids and content hashes derived from their stored (redacted) text: run
    after redaction, so no id is a hash of a value that redaction removed."""
    out = []
    for chunk in chunks:
        content_hash = identity.content_hash(chunk.text)
        out.append(
            replace(
                chunk,
                content_hash=content_hash,
                chunk_id=identity.chunk_id(
                    chunk.doc_id, chunk.position, content_hash, chunk.file_hash
                ),
                parent_id=identity.parent_id(chunk.doc_id, chunk.section),
            )
        )
    return out


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
    identity: Identity,
    title: str = "",
    tracer: Tracer | None = None,
) -> tuple[list[Chunk], int]:
    """Chunks of one validated file (ids from their text as it is now: redaction re-derives
    them), and how many pages went through OCR."""
    tracer = ingestion_tracer(tracer)
    doc_id = identity.doc_id(source, groups)
    with tracer.start_as_current_span("ingest.parse") as span:
        span.set_attributes({"doc_id": doc_id, "doc_type": doc_type})
        parsed = parse_file(path, doc_type, name=source, limits=limits)
        sections = parsed.document.sections
        pages = [b.page for s in sections for b in s.blocks if b.page is not None]
        span.set_attributes(
            {
                "sections": len(sections),
                "characters": sum(len(b.text) for s in sections for b in s.blocks),
                "pages": max(pages) if pages else 0,
                "ocr_pages": parsed.ocr_pages,
            }
        )
    doc_title = title or parsed.document.title
    with tracer.start_as_current_span("ingest.chunk") as span:
        # the chunker counts the same sentences several times; tokenise each text once
        count = functools.lru_cache(maxsize=4096)(count_tokens)
        pieces = chunk_sections(
            sections,
            max_tokens=window_budget(policy.max_tokens, policy.window_tokens),
            overlap_tokens=policy.overlap_tokens,
            count=count,
            prefix=lambda section: embedding_heading(doc_title, section.heading),
        )
        span.set_attributes(
            {
                "doc_id": doc_id,
                "chunks": len(pieces),
                "characters": sum(len(p.text) for p in pieces),
            }
        )
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    now = datetime.now(UTC)
    chunks = []
    for position, piece in enumerate(pieces):
        chunks.append(
            Chunk(
                chunk_id="",
                doc_id=doc_id,
                text=piece.text,
                source=source,
                title=doc_title,
                section=piece.section.heading,
                position=position,
                content_hash="",
                access_groups=tuple(groups),
                parent_id="",
                doc_type=doc_type,
                page=piece.page,
                page_end=piece.page_end,
                modified_at=modified,
                ingested_at=now,
                file_hash=hashed,
            )
        )
    return with_ids(chunks, identity), parsed.ocr_pages


def embedding_input(chunk: Chunk) -> str:
    """What the embedding model reads: the heading path gives a short chunk its context."""
    return embedding_text(chunk.title, chunk.section, chunk.text)


def clean_groups(groups: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(g.strip() for g in groups if g.strip()))
    if not cleaned:
        raise InvalidRequestError("a document needs at least one access group")
    return cleaned


@dataclass(slots=True)
class _File:
    """One file of a batch on its way through the stages."""

    index: int
    path: Path
    source: str
    doc_id: str
    doc_type: str = ""
    hashed: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    ocr_pages: int = 0
    redactions: Counter[str] = field(default_factory=Counter)


def _rejected(file: _File, exc: Exception) -> FileResult:
    return FileResult(source=file.source, status="rejected", doc_id=file.doc_id, reason=str(exc))


def ingest_batch(
    items: Sequence[tuple[Path, str]],
    *,
    options: IngestOptions,
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
    tracer: Tracer | None = None,
    write_lease: WriteLease = nullcontext,
) -> list[FileResult]:
    """Index ``(path, source)`` pairs; one result per pair, in order. Bad content gives a
    ``rejected`` result; a backend failure raises (and every document of the batch stays
    readable whole: its old version, or the new one). The store writes run inside
    ``write_lease()``."""
    tracer = ingestion_tracer(tracer)
    with tracer.start_as_current_span("ingest.batch") as span:
        span.set_attribute("files", len(items))
        results = _ingest_batch(items, options, store, embedder, redactor, tracer, write_lease)
        span.set_attributes(
            {
                "chunks": sum(r.chunks for r in results),
                **{
                    f"files.{status}": sum(1 for r in results if r.status == status)
                    for status in sorted({r.status for r in results})
                },
            }
        )
    return results


def _ingest_batch(
    items: Sequence[tuple[Path, str]],
    options: IngestOptions,
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
    tracer: Tracer,
    write_lease: WriteLease,
) -> list[FileResult]:
    results: dict[int, FileResult] = {}
    files: list[_File] = []
    later: list[int] = []  # a source seen twice runs after the batch, as it would one by one
    for index, (path, source) in enumerate(items):
        file = _File(index, path, source, options.identity.doc_id(source, options.groups))
        if any(f.doc_id == file.doc_id for f in files):
            later.append(index)
            continue
        files.append(file)
        try:
            file.doc_type = validate_file(path, source, options.limits)
            file.hashed = file_hash(path, options.identity, file.doc_type)
        except (InvalidRequestError, OSError) as exc:
            results[index] = _rejected(file, exc)
    candidates = [f for f in files if f.index not in results]
    if options.redact and redactor is None and candidates:
        raise InvalidRequestError("redaction was asked for but no redactor is configured")
    known = indexed_hashes(store, [f.doc_id for f in candidates]) if candidates else {}
    namesakes = replaceable_namesakes(
        store, [(f.source, f.doc_id) for f in candidates], options.groups, options.writer_groups
    )
    twins = twins_by_hash(store, sorted({f.hashed for f in candidates})) if candidates else {}
    claimed: dict[str, _File] = {}  # file hash -> the first file of this batch with those bytes
    copies: list[tuple[_File, _File]] = []
    todo: list[_File] = []
    for file in candidates:
        if known.get(file.doc_id) == file.hashed:
            results[file.index] = FileResult(file.source, "unchanged", file.doc_id)
            continue
        twin = next(
            (
                t
                for t in twins.get(file.hashed, [])
                if t.doc_id != file.doc_id and set(t.access_groups) == set(options.groups)
            ),
            None,
        )
        if twin is not None:
            results[file.index] = FileResult(
                file.source, "duplicate", twin.doc_id, reason=f"same as {twin.source}"
            )
            continue
        if file.hashed in claimed:
            copies.append((file, claimed[file.hashed]))
            continue
        claimed[file.hashed] = file
        try:
            file.chunks, file.ocr_pages = build_chunks(
                file.path,
                source=file.source,
                doc_type=file.doc_type,
                groups=options.groups,
                policy=options.chunking,
                limits=options.limits,
                count_tokens=embedder.count_tokens,
                hashed=file.hashed,
                identity=options.identity,
                title=options.title,
                tracer=tracer,
            )
            if not file.chunks:
                raise InvalidRequestError("no text content")
        except (InvalidRequestError, OSError) as exc:
            results[file.index] = _rejected(file, exc)
            continue
        todo.append(file)
    for copy, first in copies:  # identical bytes end as their first copy did
        first_result = results.get(first.index)
        results[copy.index] = (
            FileResult(copy.source, "rejected", copy.doc_id, reason=first_result.reason)
            if first_result is not None
            else FileResult(
                copy.source, "duplicate", first.doc_id, reason=f"same as {first.source}"
            )
        )
    if todo:
        _redact_embed_index(
            todo, options, store, embedder, redactor, tracer, results, namesakes, write_lease
        )
    settled = [
        f.doc_id for f in candidates if results[f.index].status in {"unchanged", "duplicate"}
    ]
    replaced = [n for doc_id in settled for n in namesakes.get(doc_id, [])]
    if replaced:  # the upload stands in for its namesakes, as an indexed one does
        with write_lease():
            delete_documents(store, replaced)
    if later:
        again = _ingest_batch(
            [items[i] for i in later], options, store, embedder, redactor, tracer, write_lease
        )
        results.update(zip(later, again, strict=True))
    return [results[i] for i in range(len(items))]


def _redact_embed_index(
    todo: list[_File],
    options: IngestOptions,
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
    tracer: Tracer,
    results: dict[int, FileResult],
    namesakes: dict[str, list[str]],
    write_lease: WriteLease,
) -> None:
    """The batch-wide stages: one redaction call, full embedding batches, bulk writes, then
    the deletes of what the new versions replace (``indexing.replace_documents``)."""
    if options.redact and redactor is not None:
        with tracer.start_as_current_span("ingest.redact") as span:
            redacted = redact_groups([f.chunks for f in todo], redactor, profile=options.profile)
            total: Counter[str] = Counter()
            for file, (chunks, tally) in zip(todo, redacted, strict=True):
                file.chunks, file.redactions = chunks, tally
                total.update(tally)
            span.set_attributes(
                {
                    "files": len(todo),
                    "chunks": sum(len(f.chunks) for f in todo),
                    "entities": sum(total.values()),
                    **entity_attributes(total),
                }
            )
    stored = _stored_profile(options, redactor)
    for file in todo:  # ids from the stored text only: never a hash of a redacted value
        file.chunks = [
            replace(c, redaction=stored) for c in with_ids(file.chunks, options.identity)
        ]
    chunks = [c for f in todo for c in f.chunks]
    with tracer.start_as_current_span("ingest.embed") as span:
        texts = [embedding_input(c) for c in chunks]
        span.set_attributes(
            {
                "chunks": len(texts),
                "characters": sum(len(t) for t in texts),
                "batch_size": options.embedding.batch_size,
            }
        )
        vectors = embed_batches(embedder, texts, options.embedding)
    with tracer.start_as_current_span("ingest.index") as span:
        doc_ids = [f.doc_id for f in todo]
        span.set_attributes({"files": len(todo), "chunks": len(chunks), "doc_ids": doc_ids})
        with write_lease():
            stale = replace_documents(
                store, chunks, vectors, namesakes={d: namesakes.get(d, []) for d in doc_ids}
            )
        span.set_attribute("stale_deleted", sum(stale.values()))
    for file in todo:
        results[file.index] = FileResult(
            source=file.source,
            status="indexed",
            doc_id=file.doc_id,
            chunks=len(file.chunks),
            stale_deleted=stale.get(file.doc_id, 0),
            redactions=dict(file.redactions),
            ocr_pages=file.ocr_pages,
        )


def _stored_profile(options: IngestOptions, redactor: Redactor | None) -> str:
    """The profile the chunks are stored with: the query path redacts hits of any weaker one."""
    if not options.redact or redactor is None:
        return RedactionProfile.NONE.value
    if options.profile is not None:
        return options.profile.value
    return str(getattr(redactor, "profile", RedactionProfile.STRICT))


def ingest_file(
    path: Path,
    *,
    source: str,
    options: IngestOptions,
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
    tracer: Tracer | None = None,
) -> FileResult:
    """Index one file. Bad content gives a ``rejected`` result; a backend failure raises."""
    [result] = ingest_batch(
        [(path, source)],
        options=options,
        store=store,
        embedder=embedder,
        redactor=redactor,
        tracer=tracer,
    )
    return result


def ingest_files(
    paths: Iterable[Path],
    *,
    groups: Sequence[str],
    store: DocumentStore,
    embedder: Embedder,
    redactor: Redactor | None,
    policy: ChunkingPolicy,
    identity: Identity,
    on_file: Callable[[FileResult], None] | None = None,
    limits: Limits | None = None,
    batch_files: int = BATCH_FILES,
    tracer: Tracer | None = None,
) -> IngestReport:
    """Index every readable file in-process, ``batch_files`` at a time; ``redactor=None``
    means redaction is off."""
    options = IngestOptions(
        groups=clean_groups(groups),
        identity=identity,
        redact=redactor is not None,
        chunking=policy,
        limits=limits or Limits(),
    )
    report = IngestReport()
    items = [(path, str(path.resolve())) for path in paths]
    for start in range(0, len(items), max(1, batch_files)):
        batch = items[start : start + max(1, batch_files)]
        results = ingest_batch(
            batch, options=options, store=store, embedder=embedder, redactor=redactor, tracer=tracer
        )
        for result in results:
            report.redactions.update(result.redactions)
            report.files.append(result)
            if on_file is not None:
                on_file(result)
    return report
