"""Typed records that cross package boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable piece of a document, with everything needed to cite and filter it."""

    chunk_id: str
    doc_id: str
    text: str
    source: str
    title: str
    section: str
    position: int
    content_hash: str
    access_groups: tuple[str, ...]
    parent_id: str
    doc_type: str = "markdown"
    page: int | None = None
    modified_at: datetime | None = None
    ingested_at: datetime | None = None
    page_end: int | None = None
    file_hash: str = ""  # hash of the whole source file: unchanged files and duplicates skip


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One indexed document as listed to a caller (from its first chunk)."""

    doc_id: str
    source: str
    title: str
    doc_type: str
    access_groups: tuple[str, ...]
    file_hash: str
    ingested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A retrieved chunk. ``score`` is the fused hybrid score (relative within one query);
    ``similarity`` is the cosine similarity to the query vector (comparable across queries)."""

    chunk: Chunk
    score: float
    similarity: float


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text and how many values of each entity type were replaced (never the values)."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class HealthStatus:
    name: str
    ok: bool
    detail: str = ""
