"""The configured collection name as an alias in front of versioned physical collections.

Each physical collection ``<alias>_<n>`` records, in its description, the schema version and the
embedding model and dimension its vectors were built with. Reads and writes go through the alias;
``holdfast reindex`` builds the next collection and repoints the alias in one step. A process
whose embedding model differs from the live collection's reads the newest collection still built
with its own model (kept for rollback) and refuses writes, until it reloads its models.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.exceptions import WeaviateBaseError

from services.errors import ConfigError, HoldfastError, StoreUnavailableError
from services.records import IndexRecord
from services.weaviate_common import (
    SCHEMA_VERSION,
    IndexModelMismatchError,
    WeaviateClient,
    record_from,
    recorded,
    schema_description,
    translated,
)

log = logging.getLogger("holdfast.store")

# how long a schema change may take to reach the node this client reads through
READABLE_WITHIN_S = 30.0
_EXACT = Tokenization.FIELD  # ids and group names must match whole, never word by word
_PROSE = Tokenization.WORD


class AliasNotCreatedError(StoreUnavailableError):
    """The pre-alias collection was deleted but the alias could not be created: its chunks are
    only in the new collection, which the message names."""


def _point_by_hand(alias: str, name: str) -> str:
    """How an operator points the alias at ``name`` when holdfast could not."""
    return (
        f"point the alias at it by hand (Weaviate: POST /v1/aliases "
        f'{{"alias": "{alias}", "class": "{name}"}}), then start the gateway'
    )


def chunk_properties_schema() -> list[Property]:
    """Every property a chunk object has (a collection created before one of them was added
    gets it at start, see ``ensure_schema``)."""
    return [
        Property(name="chunk_id", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="doc_id", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="text", data_type=DataType.TEXT, tokenization=_PROSE),
        Property(name="source", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="title", data_type=DataType.TEXT, tokenization=_PROSE),
        Property(name="section", data_type=DataType.TEXT, tokenization=_PROSE),
        Property(name="position", data_type=DataType.INT),
        Property(name="content_hash", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="file_hash", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="access_groups", data_type=DataType.TEXT_ARRAY, tokenization=_EXACT),
        Property(name="parent_id", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="doc_type", data_type=DataType.TEXT, tokenization=_EXACT),
        Property(name="page", data_type=DataType.INT),
        Property(name="page_end", data_type=DataType.INT),
        Property(name="modified_at", data_type=DataType.DATE),
        Property(name="ingested_at", data_type=DataType.DATE),
        # the redaction profile the chunk was stored with: hits of a weaker one are redacted on
        # the way out
        Property(name="redaction", data_type=DataType.TEXT, tokenization=_EXACT),
    ]


class VersionedCollections:
    """The alias, the physical collections behind it, and which of them reads and writes use."""

    def __init__(
        self, client: WeaviateClient, *, route_ttl_s: float, route_wait_s: float = 1.0
    ) -> None:
        self._client = client
        self._route_ttl_s = route_ttl_s  # how long a read of the alias target is trusted
        self._route_wait_s = route_wait_s  # how long reads wait for a re-read of it
        self._refresh_began = 0.0
        self._expect: tuple[str, int] = ("", 0)  # the embedding model this process uses
        self._route_lock = threading.RLock()
        self._route_cache: tuple[float, str | None, str | None] | None = None
        self._refresh_done: threading.Event | None = None  # set when the re-read under way ends
        self._read_handle: tuple[Any, str, Any] | None = None  # (client, name, handle)

    @property
    def alias(self) -> str:
        return self._client.connection.collection

    # --- reads of the alias and the records --------------------------------------------------

    def alias_target(self) -> str | None:
        with translated("alias"):
            found = self._client.live.alias.get(alias_name=self.alias)
        return found.collection if found is not None else None

    def index_records(self) -> list[IndexRecord]:
        """Every physical chunk collection of this alias (``<alias>_<n>``, and a pre-alias
        collection named like the alias), oldest first."""
        pattern = re.compile(rf"^{re.escape(self.alias)}(?:_(\d+))?$")
        with translated("list collections"):
            configs = self._client.live.collections.list_all(simple=False)
        found: list[tuple[int, IndexRecord]] = []
        for name, config in configs.items():
            match = pattern.match(name)
            if match is None:
                continue
            found.append((int(match.group(1) or 0), record_from(name, config.description)))
        return [record for _, record in sorted(found, key=lambda pair: pair[0])]

    def live_record(self) -> IndexRecord | None:
        target = self.alias_target()
        return next((r for r in self.index_records() if r.name == target), None)

    def schema_record(self) -> dict[str, Any]:
        """What the live collection records about itself (schema version, embedding model)."""
        with translated("schema_record"):
            target = self.alias_target() or self.alias
            config = self._client.live.collections.use(target).config.get()
        return recorded(config.description or "{}")

    # --- schema ------------------------------------------------------------------------------

    @property
    def expected_model(self) -> str:
        """The embedding model and dimensions this process reads the index for (``model:dims``;
        ``:0`` when none was set)."""
        model, dims = self._expect
        return f"{model}:{dims}"

    def ensure_schema(self, *, embedding_model: str, dimensions: int) -> None:
        """Create the first versioned collection and the alias in front of it (idempotent), and
        expect ``embedding_model``/``dimensions`` from now on. A live collection built with
        another model is not refused here, but every search and write then fails fast
        (``IndexModelMismatchError``)."""
        client = self._client.live
        alias = self.alias
        with self._route_lock:
            self._expect = (embedding_model, dimensions)
            self._route_cache = None
        with translated("ensure_schema"):
            target = self.alias_target()
            if target is None:
                if alias in client.collections.list_all(simple=True):
                    raise ConfigError(
                        f"collection {alias} predates versioned collections: run "
                        "`holdfast reindex` once to copy it into a versioned collection behind "
                        f"the alias {alias} (the old collection is deleted after the copy)"
                    )
                self._refuse_unaliased_chunks()
                name = self.create_index(embedding_model=embedding_model, dimensions=dimensions)
                try:
                    client.alias.create(alias_name=alias, target_collection=name)
                except WeaviateBaseError:
                    if self.alias_target() is None:  # not a concurrent start that won the race
                        raise
                    client.collections.delete(name)
                self.await_readable(alias)
                return
            config = client.collections.use(target).config.get()
            self._check_recorded(config.description or "", embedding_model, dimensions)
            self._check_replication(target, config)
            have = {p.name for p in config.properties}
            for prop in chunk_properties_schema():
                if prop.name not in have:
                    client.collections.use(target).config.add_property(prop)
                    log.info("collection %s: added property %s", target, prop.name)

    def _refuse_unaliased_chunks(self) -> None:
        """With no alias, a versioned collection that holds chunks is one a pre-alias migration
        copied into before the alias could be created: a new empty collection behind the alias
        would hide them (and a rollback to them would delete them all). A concurrent first start
        leaves only an empty one, which is no reason to refuse."""
        for record in self.index_records():
            with translated("read collection"):
                found = self._client.reading(record.name).query.fetch_objects(limit=1)
            if found.objects:
                raise ConfigError(
                    f"the alias {self.alias} points nowhere but {record.name} holds chunks (a "
                    f"migration of the pre-alias collection stopped before creating the alias): "
                    + _point_by_hand(self.alias, record.name)
                )

    def _check_recorded(self, description: str, embedding_model: str, dimensions: int) -> None:
        found = recorded(description)
        if "holdfast_schema_version" not in found:
            return  # a collection from before schema records: accepted as it is
        if found["holdfast_schema_version"] != SCHEMA_VERSION:
            raise ConfigError(
                f"collection {self.alias} has schema version "
                f"{found['holdfast_schema_version']}, this gateway needs {SCHEMA_VERSION}"
            )
        for key, want in (
            ("embedding_model", embedding_model),
            ("embedding_dimensions", dimensions),
        ):
            have = found.get(key)
            if want and have and have != want:
                log.error(
                    "collection %s was built with %s=%r, the configured one is %r: searches and "
                    "writes will fail until `holdfast reindex` re-embeds it",
                    self.alias,
                    key,
                    have,
                    want,
                )

    def _check_replication(self, target: str, config: Any) -> None:
        """Say so when the live collection is replicated otherwise than configured: a factor is
        set when a collection is created, so only a reindex (or Weaviate's replica movement)
        changes it."""
        want = self._client.connection.replication_factor
        have = config.replication_config.factor if config.replication_config else 1
        if have != want:
            log.warning(
                "collection %s has replication factor %d, weaviate.replication_factor is %d: "
                "run `holdfast reindex` to build a collection with the configured factor",
                target,
                have,
                want,
            )

    def await_readable(self, name: str) -> None:
        """Wait until a read of ``name`` (a collection or the alias) succeeds through this
        client at the read consistency level. A schema change returns once the cluster's leader
        has it; the node this client talks to, and the replicas it asks, apply it a moment later
        (a three-node CI run read "could not find class" right after creating the alias). On
        one node the first read succeeds."""
        deadline = time.monotonic() + READABLE_WITHIN_S
        while True:
            try:
                self._client.reading(name).query.fetch_objects(limit=1)
                return
            except WeaviateBaseError as exc:
                if time.monotonic() >= deadline:
                    with translated(f"read {name} after a schema change"):
                        raise exc
            time.sleep(0.1)

    def create_physical(self, name: str, description: str) -> None:
        self._client.live.collections.create(
            name,
            description=description,
            vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.hnsw(
                    distance_metric=VectorDistances.COSINE
                )
            ),
            inverted_index_config=Configure.inverted_index(index_timestamps=False),
            properties=chunk_properties_schema(),
            **self._client.connection.collection_options(),
        )

    # --- changes of the versions (reindex) ---------------------------------------------------

    def create_index(self, *, embedding_model: str, dimensions: int) -> str:
        """A new, empty physical collection ``<alias>_<n+1>`` recording the model; its name."""
        used = [0]
        for record in self.index_records():
            tail = record.name[len(self.alias) + 1 :]
            used.append(int(tail) if tail.isdigit() else 0)
        name = f"{self.alias}_{max(used) + 1}"
        with translated("create collection"):
            self.create_physical(name, schema_description(embedding_model, dimensions))
        self.await_readable(name)
        return name

    def point_alias(self, target: str) -> str | None:
        """Repoint the alias at ``target`` in one step (Weaviate swaps it atomically); returns
        the collection it pointed at before (None: it is created, see ``_create_alias``)."""
        client = self._client.live
        with translated("point alias"):
            before = self.alias_target()
            if before is None:
                self._create_alias(target)
            else:
                client.alias.update(alias_name=self.alias, new_target_collection=target)
        self.forget_route()
        self.await_readable(self.alias)
        return before

    def _create_alias(self, target: str) -> None:
        """Create the alias, deleting a pre-alias collection of its name first: an alias cannot
        shadow a collection (a short gap). Once that is deleted its chunks are only in
        ``target``, so a failure here must say where they are (``AliasNotCreatedError``)."""
        client = self._client.live
        if client.collections.exists(self.alias):
            client.collections.delete(self.alias)
        try:
            with translated("create alias"):
                client.alias.create(alias_name=self.alias, target_collection=target)
        except HoldfastError as exc:
            raise AliasNotCreatedError(
                f"{exc}; the chunks of the pre-alias collection {self.alias} are now only in "
                f"{target}: " + _point_by_hand(self.alias, target)
            ) from exc

    def drop_index(self, name: str) -> None:
        """Delete a physical collection that the alias does not point at."""
        if name == self.alias_target():
            raise ConfigError(f"{name} is the live collection; it cannot be dropped")
        if name not in {r.name for r in self.index_records()}:
            raise ConfigError(f"{name} is not a chunk collection of {self.alias}")
        with translated("drop collection"):
            self._client.live.collections.delete(name)

    # --- the route reads and writes take -----------------------------------------------------

    def _route(self, *, fresh: bool = False) -> tuple[str | None, str | None]:
        """(collection to read, why writes are refused or None), trusted for ``route_ttl_s``
        (``fresh``: read again now).

        Normally (the alias, None). If the alias points at a collection built with another
        model than this process embeds with (a reindex switched it and this process has not
        reloaded models.yaml yet, or the model was changed without a reindex), reads go to the
        newest collection still built with this process's model (kept for rollback) and writes
        are refused; with no such collection, reads are refused too.

        A route past its time is read again in a thread of its own, and reads wait for it at
        most ``route_wait_s`` from when that read began, then keep the last route: on a cluster
        whose RAFT leader has just died, schema reads hang until a new leader is elected (a CI
        run saw one block for the client's whole 30 s timeout, and every search behind it),
        while searches themselves go on. A read that fails keeps the old route.
        """
        model, dims = self._expect
        if not model and not dims:
            return self.alias, None
        with self._route_lock:
            cached = self._route_cache
            if fresh or cached is None or self._route_ttl_s <= 0:
                done = None
            elif time.monotonic() - cached[0] < self._route_ttl_s:
                return cached[1], cached[2]
            else:
                done = self._start_refresh()
                wait_s = self._refresh_began + self._route_wait_s - time.monotonic()
        if done is None:
            return self._read_route(model, dims)
        done.wait(max(0.0, wait_s))
        with self._route_lock:
            cached = self._route_cache
        if cached is None:  # forgotten meanwhile
            return self._read_route(model, dims)
        return cached[1], cached[2]  # the new route if it came in time, else the last one

    @property
    def refreshing(self) -> bool:
        """A background re-read of the route is under way."""
        return self._refresh_done is not None

    def reroute(self, wait_s: float) -> bool:
        """After a read failed: read the route again, waiting at most ``wait_s`` for it (a
        schema read can hang while the cluster elects a leader; the last route stays then).
        False when the route cannot have moved (no embedding model expected: always the
        alias)."""
        model, dims = self._expect
        if not model and not dims:
            return False
        with self._route_lock:
            done = self._start_refresh()
        done.wait(wait_s)
        return True

    def _start_refresh(self) -> threading.Event:
        """The re-read under way, or a new one in the background (call with the lock held)."""
        if self._refresh_done is None:
            done = threading.Event()
            self._refresh_done = done
            self._refresh_began = time.monotonic()
            threading.Thread(
                target=self._refresh_route, args=(done,), name="weaviate-route", daemon=True
            ).start()
        return self._refresh_done

    def _refresh_route(self, done: threading.Event) -> None:
        try:
            model, dims = self._expect
            self._read_route(model, dims)
        except HoldfastError as exc:
            log.warning("could not re-read the index route (%s); reads keep the last one", exc)
        finally:
            with self._route_lock:
                self._refresh_done = None
            done.set()

    def _read_route(self, model: str, dims: int) -> tuple[str | None, str | None]:
        """Read the alias and the index records now, and remember the route they give."""
        alias = self.alias
        now = time.monotonic()
        records = self.index_records()
        target = self.alias_target()
        live = next((r for r in records if r.name == target), None)
        if live is None or not live.embedding_model or live.built_for(model, dims):
            route: tuple[str | None, str | None] = (alias, None)
        else:
            older = [r for r in records if r.built_for(model, dims) and r.embedding_model]
            reason = (
                f"the index {alias} ({live.name}) was built with embedding model "
                f"{live.embedding_model!r} ({live.dimensions} dims) but the configured "
                f"embedding alias uses {model!r} ({dims} dims): run `holdfast reindex` to "
                "re-embed the chunks with the configured model, or reload models.yaml "
                f"with {live.embedding_model!r}"
            )
            route = (older[-1].name if older else None, reason)
            if older:
                log.warning("%s; reading from %s meanwhile", reason, older[-1].name)
        with self._route_lock:
            if self._expect == (model, dims):  # not a read begun before a model reload
                self._route_cache = (now, route[0], route[1])
        return route

    def forget_route(self) -> bool:
        """Drop a cached route (True if there was one worth re-reading)."""
        with self._route_lock:
            had = self._route_cache is not None
            self._route_cache = None
        return had

    def reads(self) -> Any:
        """The collection searches and document reads use now."""
        name, reason = self._route()
        if name is None:
            raise IndexModelMismatchError(str(reason))
        return self._handle(name)

    def _handle(self, name: str) -> Any:
        """The client's handle on collection ``name``, made once per client and name (making
        one validates its name and config objects: a measurable share of a search)."""
        client = self._client.live
        cached = self._read_handle
        if cached is not None and cached[0] is client and cached[1] == name:
            return cached[2]
        handle = self._client.reading(name)
        self._read_handle = (client, name, handle)
        return handle

    def writes(self) -> Any:
        """The collection writes go to; refused while the live one has another model. Read
        afresh on every write (searches use the cached route): within ``route_ttl_s`` of a
        reindex switching the alias, a cached route would send vectors of the old model to the
        new collection, where they stay."""
        name, reason = self._route(fresh=True)
        if reason is not None:
            raise IndexModelMismatchError(str(reason))
        return self._client.writing(str(name))
