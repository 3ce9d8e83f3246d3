"""Re-embed every chunk into a shadow collection, then repoint the alias: no downtime.

Searches keep reading the live collection (through the alias) the whole time. The shadow is a new
physical collection ``<alias>_<n>`` that records the new embedding model and dimension; every
chunk is copied with its id and all its properties, only the vector is new. Before the switch:

- writes that arrived meanwhile are re-synced: the live collection is scanned again (properties
  only, no vectors) and new or changed chunks are embedded and copied, deleted ones deleted, until
  a pass finds nothing (a reindex also refuses to start, or to switch, while an ingest job is
  queued or running);
- when a gate is given, it compares both collections on the golden set and may refuse the switch.

The previous physical collection stays, so a rollback is one alias switch; older generations
(and shadows a gate refused) are deleted after a successful switch.

A reindex is also the migration to keyed ids: a chunk stored with the unkeyed ids of earlier
releases is copied under keyed ones (``ingestion.identity.rekeyed``); every other chunk keeps its
id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingestion.embedding import EmbeddingPolicy, embed_batches
from ingestion.identity import Identity, rekeyed
from ingestion.pipeline import embedding_input
from services.errors import ConfigError, HoldfastError
from services.ports import Embedder, VersionedIndex
from services.records import IndexRecord, StoredChunk

MAX_RESYNC_PASSES = 5


class ReindexRefusedError(HoldfastError):
    """A reindex that must not start or must not switch (the reason says why and what to do)."""

    status, code, title = 409, "reindex_refused", "Reindex refused"


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What the quality gate found; ``failures`` empty means the shadow may go live."""

    live: dict[str, float]
    shadow: dict[str, float]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(slots=True)
class ReindexResult:
    source: str
    shadow: str
    embedding_model: str
    dimensions: int
    chunks: int = 0
    rekeyed: int = 0  # chunks that still had unkeyed ids, copied under keyed ones
    resynced: int = 0
    seconds: float = 0.0  # the whole run, gate included
    copy_seconds: float = 0.0  # embedding and writing, re-syncs included
    switched: bool = False
    forced: bool = False
    verdict: GateVerdict | None = None
    groups: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # older generations and refused shadows


def fingerprint(props: dict[str, Any]) -> str:
    """A digest of everything stored about a chunk: a changed property means a changed chunk."""
    blob = json.dumps(props, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _batches(rows: Iterator[StoredChunk], size: int) -> Iterator[list[StoredChunk]]:
    batch: list[StoredChunk] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(slots=True)
class Copier:
    """Embeds chunks of the live collection and writes them, unchanged but for the vector (and
    for unkeyed ids, which are re-derived)."""

    store: VersionedIndex
    embedder: Embedder
    shadow: str
    policy: EmbeddingPolicy
    identity: Identity
    copied: dict[str, str] = field(default_factory=dict)  # source uuid -> fingerprint
    shadow_ids: dict[str, str] = field(default_factory=dict)  # source uuid -> shadow uuid
    groups: set[str] = field(default_factory=set)
    rekeyed: int = 0

    def copy(self, rows: Sequence[StoredChunk]) -> int:
        texts = [embedding_input(row.chunk) for row in rows]
        vectors = embed_batches(self.embedder, texts, self.policy)
        out = []
        for row, vector in zip(rows, vectors, strict=True):
            props = rekeyed(row.properties, self.identity)
            if props is None:
                self.shadow_ids[row.uuid] = row.uuid
                out.append((row.uuid, row.properties, vector))
                continue
            self.rekeyed += 1
            self.shadow_ids[row.uuid] = self.store.object_id(str(props["chunk_id"]))
            out.append((self.shadow_ids[row.uuid], props, vector))
        self.store.insert_raw(self.shadow, out)
        for row in rows:
            self.copied[row.uuid] = fingerprint(row.properties)
            self.groups.update(row.chunk.access_groups)
        return len(rows)

    def resync(self, source: str) -> int:
        """Copy what changed in ``source`` since it was copied; delete what it lost."""
        changed: list[StoredChunk] = []
        seen: set[str] = set()
        for row in self.store.scan(source, page_size=self.policy.batch_size):
            seen.add(row.uuid)
            if self.copied.get(row.uuid) != fingerprint(row.properties):
                changed.append(row)
        gone = [u for u in self.copied if u not in seen]
        for batch in _batches(iter(changed), self.policy.batch_size):
            self.copy(batch)
        if gone:
            self.store.delete_ids(self.shadow, [self.shadow_ids.pop(u, u) for u in gone])
            for uuid in gone:
                self.copied.pop(uuid, None)
        return len(changed) + len(gone)


def plan_source(store: VersionedIndex) -> IndexRecord:
    """The collection to copy from: the alias target, or a pre-alias collection to migrate."""
    target = store.alias_target()
    records = store.index_records()
    live = next((r for r in records if r.name == target), None)
    if live is None:
        legacy = [r for r in records if r.name == store.alias]
        if not legacy:
            raise ConfigError(f"no chunk collection {store.alias} to reindex; run `holdfast up`")
        live = legacy[0]
    if live.schema_version is not None and live.schema_version != store.schema_version:
        raise ConfigError(
            f"{live.name} has schema version {live.schema_version}; this gateway writes "
            f"{store.schema_version}"
        )
    return live


def reindex(
    store: VersionedIndex,
    embedder: Embedder,
    *,
    embedding_model: str,
    jobs_busy: Callable[[], str | None],
    gate: Callable[[str, str, list[str]], GateVerdict] | None = None,
    identity: Identity,
    force: bool = False,
    batch_size: int,
    on_total: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda done: None,
) -> ReindexResult:
    """The whole reindex. ``jobs_busy`` names a running ingest job (or None); ``gate(live,
    shadow, groups)`` judges the shadow. A refused gate leaves the shadow for inspection (a later
    reindex or ``--drop-old`` removes it) and raises nothing: the result says ``switched=False``.
    """
    busy = jobs_busy()
    if busy:
        raise ReindexRefusedError(
            f"ingest job {busy} is queued or running; wait for it (holdfast ingest shows it), "
            "then run the reindex again"
        )
    started = time.monotonic()
    source = plan_source(store)
    shadow = store.create_index(embedding_model=embedding_model, dimensions=embedder.dimensions)
    result = ReindexResult(source.name, shadow, embedding_model, embedder.dimensions)
    on_total(store.count_in(source.name))
    copier = Copier(store, embedder, shadow, EmbeddingPolicy(batch_size=batch_size), identity)
    for batch in _batches(store.scan(source.name, page_size=batch_size), batch_size):
        result.chunks += copier.copy(batch)
        on_progress(len(batch))
    for _ in range(MAX_RESYNC_PASSES):
        moved = copier.resync(source.name)
        result.resynced += moved
        if moved == 0:
            break
    else:
        raise ReindexRefusedError(
            f"{source.name} kept changing during {MAX_RESYNC_PASSES} re-sync passes; run the "
            f"reindex again when ingestion is quiet ({shadow} is left unused)"
        )
    result.groups = sorted(copier.groups)
    result.rekeyed = copier.rekeyed
    result.copy_seconds = time.monotonic() - started
    if gate is not None:
        result.verdict = gate(source.name, shadow, result.groups)
        if not result.verdict.passed and not force:
            result.seconds = time.monotonic() - started
            return result
    result.forced = force and result.verdict is not None and not result.verdict.passed
    busy = jobs_busy()
    if busy:
        raise ReindexRefusedError(
            f"ingest job {busy} started during the reindex; run it again when it is done "
            f"({shadow} is left unused)"
        )
    result.resynced += copier.resync(source.name)  # the last writes before the switch
    store.point_alias(shadow)
    result.switched = True
    for record in store.index_records():  # one generation back is kept for a rollback
        if record.name not in (shadow, source.name):
            store.drop_index(record.name)
            result.dropped.append(record.name)
    result.seconds = time.monotonic() - started
    return result


def rollback(store: VersionedIndex) -> tuple[str, str]:
    """Point the alias back at the newest older collection; returns (from, to)."""
    target = store.alias_target()
    older = [r for r in store.index_records() if r.name != target and r.name != store.alias]
    if target is None or not older:
        raise ReindexRefusedError("no earlier collection is kept to roll back to")
    names = [r.name for r in store.index_records()]
    before = [r for r in older if names.index(r.name) < names.index(target)]
    back = (before or older)[-1]
    store.point_alias(back.name)
    return target, back.name


def drop_old(store: VersionedIndex) -> list[str]:
    """Delete every physical collection except the live one."""
    target = store.alias_target()
    if target is None:
        raise ReindexRefusedError("the alias points nowhere yet; nothing is dropped")
    dropped = []
    for record in store.index_records():
        if record.name != target:
            store.drop_index(record.name)
            dropped.append(record.name)
    return dropped
