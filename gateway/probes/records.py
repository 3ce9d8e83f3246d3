"""Typed records of a probe run: callers, documents, canaries, probes, leaks, the report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum


class Surface(StrEnum):
    """A read surface of the gateway that a probe exercises."""

    SEARCH = "search"
    QUERY = "query"
    QUERY_STREAM = "query-stream"
    CHAT = "chat"
    CHAT_STREAM = "chat-stream"
    DOCUMENTS_LIST = "documents-list"
    DOCUMENT_GET = "document-get"
    DOCUMENT_DELETE = "document-delete"
    JOB = "job"
    ERRORS = "errors"
    METRICS = "metrics"


GENERATING = frozenset({Surface.QUERY, Surface.QUERY_STREAM, Surface.CHAT, Surface.CHAT_STREAM})


@dataclass(frozen=True, slots=True)
class Caller:
    """One API key under test. ``groups`` is known in CI (the test minted the key) and None for a
    customer's key; then what the key may see is taken from its own document listing."""

    label: str
    key: str
    groups: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Document:
    doc_id: str
    source: str
    title: str
    access_groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Canary:
    """A unique marker planted in one document's body, and words that retrieve that document."""

    marker: str
    topic: str
    doc_id: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Marker:
    """A string that must never reach a caller who may not read ``doc_id``."""

    kind: str  # doc_id | chunk_id | title | source | canary | text | group
    value: str
    doc_id: str


@dataclass(frozen=True, slots=True)
class Probe:
    surface: Surface
    caller: str
    method: str
    path: str
    payload: str = ""  # the question or query text, when there is one
    target: str = ""  # the foreign doc id or job id the probe aims at


@dataclass(frozen=True, slots=True)
class Leak:
    probe: Probe
    kind: str
    value: str
    doc_id: str
    detail: str

    def line(self) -> str:
        p = self.probe
        return (
            f"[{p.surface}] {p.caller} {p.method} {p.path} -> {self.kind} {self.value!r} of doc "
            f"{self.doc_id or '?'}: {self.detail} (asked {p.payload[:60]!r})"
        )


@dataclass(slots=True)
class ProbeReport:
    seed: int
    callers: list[str] = field(default_factory=list)
    documents: int = 0
    foreign_pairs: int = 0  # (caller, document the caller may not read) pairs probed for
    canaries: int = 0
    probes: Counter[Surface] = field(default_factory=Counter)
    statuses: Counter[tuple[Surface, int]] = field(default_factory=Counter)
    leaks: list[Leak] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.probes.values())

    def leaks_on(self, surface: Surface) -> int:
        return sum(1 for leak in self.leaks if leak.probe.surface is surface)

    def table_rows(self) -> list[tuple[str, int, int]]:
        """(surface, probes, leaks) for every surface, in the enum's order."""
        return [(s.value, self.probes[s], self.leaks_on(s)) for s in Surface]

    def failure_text(self, limit: int = 40) -> str:
        lines = [f"{len(self.leaks)} leak(s) in {self.total} probes (seed {self.seed}):"]
        lines += [f"  {leak.line()}" for leak in self.leaks[:limit]]
        if len(self.leaks) > limit:
            lines.append(f"  ... and {len(self.leaks) - limit} more")
        return "\n".join(lines)
