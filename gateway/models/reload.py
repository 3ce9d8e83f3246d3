"""Reload ``models.yaml``: validate, probe what changed, swap atomically, record who and what.

Triggered by ``POST /admin/reload``, SIGHUP or a change of the file. A file that fails the schema
or a probe is rejected with its reason and the running set keeps serving.

The swap, under the reload lock: first the store learns the new embedding model (it routes reads
and writes by it), then the registry publishes the new set, so a request that sees the new
embedder never meets a store still routing for the old one; then the change is audited; then
the adapters of the old set that the new one does not reuse are closed, ``retire_after_s``
later (requests and ingest batches that took the old set finish on it first).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from gateway.models.audit import ModelAudit
from gateway.models.config import RERANK_ALIAS, ModelsConfig, load_models
from gateway.models.registry import (
    ModelRegistry,
    ModelSet,
    ModelSetBuilder,
    close_quietly,
    config_digest,
)
from gateway.settings import Settings
from services.errors import HoldfastError, InvalidConfigFileError
from services.ports import ManagedStore
from services.records import ChatMessage, IndexRecord

log = logging.getLogger("holdfast.models")
PROBE_TEXT = "ping"
# How long a replaced set stays open: the longest a request or an ingest batch that took it
# before the swap keeps using it.
RETIRE_AFTER_S = 300.0


@dataclass(frozen=True, slots=True)
class ReloadResult:
    swapped: bool
    version: int
    digest: str
    changes: dict[str, str] = field(default_factory=dict)
    probed: list[str] = field(default_factory=list)


def probe(
    settings: Settings, models: ModelSet, aliases: list[str], *, builder: ModelSetBuilder
) -> list[str]:
    """A tiny real request to each alias (no fallbacks); raises on the first that fails.
    Aliases outside ``models``' own embedder and reranker get an adapter from ``builder``."""
    probed: list[str] = []
    for alias in aliases:
        entry = models.config.entry(alias)
        mode = entry.model_info.mode
        try:
            if mode == "chat":
                models.router.complete(
                    alias, [ChatMessage("user", PROBE_TEXT)], max_tokens=1, use_fallbacks=False
                )
            elif mode == "embedding":
                if alias == settings.generation.embedding_alias:
                    models.embedder.embed_query(PROBE_TEXT)
                else:  # an adapter for the probe alone: closed once probed
                    extra = builder.embedder_for(entry)
                    try:
                        extra.embed_query(PROBE_TEXT)
                    finally:
                        close_quietly(extra)
            elif mode == "rerank":
                if alias == RERANK_ALIAS:
                    assert models.reranker is not None
                    models.reranker.rerank(PROBE_TEXT, [PROBE_TEXT])
                else:
                    other = builder.reranker_for(entry)
                    try:
                        other.rerank(PROBE_TEXT, [PROBE_TEXT])
                    finally:
                        close_quietly(other)
        except HoldfastError as exc:
            raise InvalidConfigFileError(f"probe of alias {alias!r} failed: {exc}") from exc
        probed.append(alias)
    return probed


def _reindexed_for(
    store: ManagedStore | None, old_model: str, new_model: str
) -> IndexRecord | None:
    """The live collection, if a reindex already built it with ``new_model`` (then the
    embedding model may change: the gateway follows the index instead of breaking it)."""
    if store is None or old_model == new_model:
        return None
    live = store.live_record()
    return live if live is not None and live.embedding_model == new_model else None


def prepare(
    settings: Settings,
    config: ModelsConfig,
    current: ModelSet | None,
    *,
    builder: ModelSetBuilder,
    store: ManagedStore | None = None,
) -> tuple[ModelSet, dict[str, str], list[str]]:
    """Build (through ``builder``) and probe a set for ``config`` without publishing it
    (``holdfast models check``). An embedding-model change is accepted only when ``store``'s
    live collection records it."""
    changes = (
        config.changed_aliases(current.config)
        if current
        else {e.model_name: "added" for e in config.model_list}
    )
    reindexed: IndexRecord | None = None
    if current is not None:
        alias = settings.generation.embedding_alias
        old, new = current.config.entry(alias), config.entry(alias)
        if (old.model, old.litellm_params.get("model_path")) != (
            new.model,
            new.litellm_params.get("model_path"),
        ):
            reindexed = _reindexed_for(store, old.model, new.model)
            if reindexed is None:
                raise InvalidConfigFileError(
                    f"{alias} changes from {old.model!r} to {new.model!r}: the index was built "
                    "with the old model; run `holdfast reindex` to switch embedding models"
                )
    try:
        candidate = builder.build(config, previous=current)
    except HoldfastError as exc:
        raise InvalidConfigFileError(f"models.yaml cannot be loaded: {exc}") from exc
    try:
        try:
            builder.warm_up(candidate)
        except HoldfastError as exc:
            raise InvalidConfigFileError(f"models.yaml cannot be loaded: {exc}") from exc
        if reindexed is not None and reindexed.dimensions != candidate.embedder.dimensions:
            raise InvalidConfigFileError(
                f"{reindexed.name} holds {reindexed.dimensions}-dim vectors, the new embedding "
                f"model gives {candidate.embedder.dimensions}"
            )
        to_probe = [a for a, what in changes.items() if what != "removed"]
        probed = probe(settings, candidate, to_probe, builder=builder)
    except InvalidConfigFileError:
        retire(candidate, keep=current)  # never published: its new adapters go now
        raise
    return candidate, changes, probed


def _parts(models: ModelSet) -> list[object]:
    return [models.router, models.embedder, models.reranker]


def retire(old: ModelSet, *, keep: ModelSet | None, after_s: float = 0.0) -> None:
    """Close the adapters of ``old`` that ``keep`` does not share (an unchanged entry's adapter
    is reused by the next set), now or ``after_s`` seconds later on a daemon timer."""
    kept = {id(part) for part in _parts(keep)} if keep is not None else set()
    gone = [part for part in _parts(old) if part is not None and id(part) not in kept]

    def close() -> None:
        for part in gone:
            try:
                close_quietly(part)
            except Exception:  # one adapter that fails to close keeps no other open
                log.exception("closing a replaced model adapter failed")

    if after_s <= 0:
        close()
        return
    timer = threading.Timer(after_s, close)
    timer.name = "retire-models"
    timer.daemon = True
    timer.start()


def _learn_model(settings: Settings, store: ManagedStore, config: ModelsConfig, dims: int) -> None:
    entry = config.entry(settings.generation.embedding_alias)
    store.ensure_schema(  # reads and writes follow the alias again
        embedding_model=str(entry.litellm_params.get("model", entry.model_name)),
        dimensions=dims,
    )


def reload_models(
    settings: Settings,
    registry: ModelRegistry,
    audit: ModelAudit,
    *,
    actor: str,
    trigger: str,
    store: ManagedStore | None = None,
    retire_after_s: float = RETIRE_AFTER_S,
) -> ReloadResult:
    """Load the file and swap if it is valid and differs; ``InvalidConfigFileError`` otherwise.
    The new set is built by the registry's builder; the order of the swap is in the module
    docstring."""
    with registry.reload_lock:
        current = registry.current()
        try:
            config = load_models(settings.models_path)
        except HoldfastError as exc:
            audit.record(
                actor=actor, trigger=trigger, outcome="rejected", changes={}, detail=str(exc)
            )
            log.warning("models.yaml rejected (%s, by %s): %s", trigger, actor, exc)
            raise InvalidConfigFileError(str(exc)) from exc
        digest = config_digest(config)
        if digest == current.digest:
            return ReloadResult(False, current.version, digest)
        try:
            candidate, changes, probed = prepare(
                settings, config, current, builder=registry.builder, store=store
            )
        except InvalidConfigFileError as exc:
            audit.record(
                actor=actor,
                trigger=trigger,
                outcome="rejected",
                changes={},
                detail=str(exc),
                digest=digest,
            )
            log.warning("models.yaml rejected (%s, by %s): %s", trigger, actor, exc)
            raise
        if store is not None and candidate.embedder is not current.embedder:
            try:
                _learn_model(settings, store, config, candidate.embedder.dimensions)
            except HoldfastError as exc:
                try:  # the store goes on expecting the model that keeps serving
                    _learn_model(settings, store, current.config, current.embedder.dimensions)
                except HoldfastError:
                    log.warning("the store could not be told the running embedding model again")
                retire(candidate, keep=current)
                audit.record(
                    actor=actor,
                    trigger=trigger,
                    outcome="rejected",
                    changes={},
                    detail=f"the store could not follow the new embedding model: {exc}",
                    digest=digest,
                )
                raise
        registry.swap(candidate)
        audit.record(
            actor=actor,
            trigger=trigger,
            outcome="swapped",
            changes=changes,
            digest=digest,
            detail=f"version {current.version} -> {candidate.version}",
        )
        log.info(
            "models swapped to version %d (%s, by %s): %s",
            candidate.version,
            trigger,
            actor,
            changes,
        )
        retire(current, keep=candidate, after_s=retire_after_s)
        return ReloadResult(True, candidate.version, digest, changes, probed)
