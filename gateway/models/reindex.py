"""Re-embed every chunk into a shadow collection, then repoint the alias: no downtime.

Searches keep reading the live collection (through the alias) the whole time. The shadow is a new
physical collection ``<alias>_<n>`` that records the new embedding model and dimension; every
chunk is copied with its id and all its properties, only the vector is new. Before the switch:

- writes that arrived meanwhile are re-synced: the live collection is scanned again (properties
  only, no vectors) and new or changed chunks are embedded and copied, deleted ones deleted, until
  a pass finds nothing (a reindex refuses to start while an ingest job is queued or running);
- when a gate is given, it compares both collections on the golden set and may refuse the switch;
- the last re-sync and the alias switch run behind the write fence (``write_fence``): no ingest
  write or DELETE runs from the last re-sync to the switch (the ones running are waited for, new
  ones wait or are refused as retryable), and a job queued or running then refuses the switch;
- after the switch, one more re-sync copies anything that still reached the old collection
  (not from a pre-alias collection: the switch deletes it to make way for the alias).

The previous physical collection stays, so a rollback is one alias switch; older generations
(and shadows a gate refused) are deleted after a successful switch. A rollback first brings the
previous collection up to date with the live one (what was deleted since the switch is deleted,
what was written is embedded with the previous collection's model and copied), behind the fence
too, so it resurrects nothing and loses nothing.

A reindex is also the migration to keyed ids: a chunk stored with the unkeyed ids of earlier
releases is copied under keyed ones (``ingestion.identity.rekeyed``); every other chunk keeps its
id.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from gateway.models.write_fence import FenceHold, WriteFence, fenced
from ingestion.embedding import EmbeddingPolicy, embed_batches
from ingestion.identity import Identity, rekeyed
from ingestion.pipeline import embedding_input
from services.errors import ConfigError, HoldfastError
from services.ports import Embedder, VersionedIndex
from services.records import IndexRecord, StoredChunk

MAX_RESYNC_PASSES = 5
# How long the fence waits for the document writes running when it is raised (an ingest batch's
# store writes, a DELETE) before the switch is refused.
FENCE_DRAIN_S = 120.0


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
    for unkeyed ids, which are re-derived). ``embedder`` None: ``load_embedder`` gives it at
    the first chunk to embed (a rollback that finds nothing written needs no model)."""

    store: VersionedIndex
    embedder: Embedder | None
    shadow: str
    policy: EmbeddingPolicy
    identity: Identity | None  # None: ids are copied as they are (a rollback's copy)
    copied: dict[str, str] = field(default_factory=dict)  # source uuid -> fingerprint
    shadow_ids: dict[str, str] = field(default_factory=dict)  # source uuid -> shadow uuid
    groups: set[str] = field(default_factory=set)
    rekeyed: int = 0
    load_embedder: Callable[[], Embedder] | None = None

    @classmethod
    def into_existing(
        cls,
        store: VersionedIndex,
        target: str,
        *,
        policy: EmbeddingPolicy,
        load_embedder: Callable[[], Embedder],
    ) -> Copier:
        """A copier into ``target`` as it is now: each of its chunks counts as copied, so a
        ``resync`` from another collection changes only what differs."""
        copier = cls(store, None, target, policy, None, load_embedder=load_embedder)
        for row in store.scan(target, page_size=policy.batch_size):
            copier.copied[row.uuid] = fingerprint(row.properties)
            copier.shadow_ids[row.uuid] = row.uuid
        return copier

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            if self.load_embedder is None:
                raise ReindexRefusedError(f"no embedding model to copy chunks into {self.shadow}")
            self.embedder = self.load_embedder()
        return self.embedder

    def copy(self, rows: Sequence[StoredChunk]) -> int:
        texts = [embedding_input(row.chunk) for row in rows]
        vectors = embed_batches(self._embedder(), texts, self.policy)
        out = []
        for row, vector in zip(rows, vectors, strict=True):
            props = None if self.identity is None else rekeyed(row.properties, self.identity)
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


def _fence(fence: WriteFence | None, holder: str) -> AbstractContextManager[FenceHold | None]:
    return nullcontext() if fence is None else fenced(fence, holder, drain_s=FENCE_DRAIN_S)


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
    fence: WriteFence | None = None,
    on_total: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[int], None] = lambda done: None,
) -> ReindexResult:
    """The whole reindex. ``jobs_busy`` names a queued or running ingest job (or None);
    ``gate(live, shadow, groups)`` judges the shadow; ``fence`` is the installation's write
    fence (None only where nothing else writes, as in tests of the procedure). A refused gate
    leaves the shadow for inspection (a later reindex or ``--drop-old`` removes it) and raises
    nothing: the result says ``switched=False``.
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
    with _fence(fence, f"holdfast reindex ({source.name} -> {shadow})") as hold:
        busy = jobs_busy()
        if busy:
            raise ReindexRefusedError(
                f"ingest job {busy} started during the reindex; run it again when it is done "
                f"({shadow} is left unused)"
            )
        result.resynced += copier.resync(source.name)  # the last writes before the switch
        if hold is not None:
            hold.check()
        store.point_alias(shadow)
        result.switched = True
    # a write that reached the old collection all the same (a writer outside the fence); not for
    # a pre-alias collection: the switch deleted it and its name now reads the new collection,
    # where every chunk moved to a keyed id would look deleted and be deleted
    if source.name != store.alias:
        result.resynced += copier.resync(source.name)
    for record in store.index_records():  # one generation back is kept for a rollback
        if record.name not in (shadow, source.name):
            store.drop_index(record.name)
            result.dropped.append(record.name)
    result.seconds = time.monotonic() - started
    return result


@dataclass(frozen=True, slots=True)
class RollbackResult:
    source: str  # the collection that was live
    target: str  # the one that is live now
    synced: int  # chunks written or deleted since the switch, brought over before going back


def rollback(
    store: VersionedIndex,
    *,
    load_embedder: Callable[[IndexRecord], Embedder],
    fence: WriteFence | None = None,
    batch_size: int = 64,
) -> RollbackResult:
    """Point the alias back at the newest older collection, after bringing that collection up
    to date with the live one: chunks deleted since the switch are deleted from it, chunks
    written or changed are embedded with its model (``load_embedder(record)``, called only if
    there are any) and copied. The last pass and the switch run behind ``fence``; one more pass
    after the switch copies what still reached the collection left."""
    target = store.alias_target()
    older = [r for r in store.index_records() if r.name != target and r.name != store.alias]
    if target is None or not older:
        raise ReindexRefusedError("no earlier collection is kept to roll back to")
    names = [r.name for r in store.index_records()]
    before = [r for r in older if names.index(r.name) < names.index(target)]
    back = (before or older)[-1]
    copier = Copier.into_existing(
        store,
        back.name,
        policy=EmbeddingPolicy(batch_size=batch_size),
        load_embedder=lambda: load_embedder(back),
    )
    synced = copier.resync(target)
    with _fence(fence, f"holdfast reindex --rollback ({target} -> {back.name})") as hold:
        synced += copier.resync(target)
        if hold is not None:
            hold.check()
        store.point_alias(back.name)
    synced += copier.resync(target)
    return RollbackResult(target, back.name, synced)


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
