"""Reload ``models.yaml``: validate, probe what changed, swap atomically, record who and what.

Triggered by ``POST /admin/reload``, SIGHUP or a change of the file. A file that fails the schema
or a probe is rejected with its reason and the running set keeps serving.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from gateway.models.audit import ModelAudit
from gateway.models.config import RERANK_ALIAS, ModelsConfig, load_models
from gateway.models.registry import ModelRegistry, ModelSet, ModelSetBuilder, config_digest
from gateway.settings import Settings
from services.errors import HoldfastError, InvalidConfigFileError
from services.ports import ManagedStore
from services.records import ChatMessage, IndexRecord

log = logging.getLogger("holdfast.models")
PROBE_TEXT = "ping"


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
                same = alias == settings.generation.embedding_alias
                embedder = models.embedder if same else builder.embedder_for(entry)
                embedder.embed_query(PROBE_TEXT)
            elif mode == "rerank":
                reranker = models.reranker if alias == RERANK_ALIAS else builder.reranker_for(entry)
                assert reranker is not None
                reranker.rerank(PROBE_TEXT, [PROBE_TEXT])
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
        builder.warm_up(candidate)
    except HoldfastError as exc:
        raise InvalidConfigFileError(f"models.yaml cannot be loaded: {exc}") from exc
    if reindexed is not None and reindexed.dimensions != candidate.embedder.dimensions:
        raise InvalidConfigFileError(
            f"{reindexed.name} holds {reindexed.dimensions}-dim vectors, the new embedding model "
            f"gives {candidate.embedder.dimensions}"
        )
    to_probe = [a for a, what in changes.items() if what != "removed"]
    return candidate, changes, probe(settings, candidate, to_probe, builder=builder)


def reload_models(
    settings: Settings,
    registry: ModelRegistry,
    audit: ModelAudit,
    *,
    actor: str,
    trigger: str,
    store: ManagedStore | None = None,
) -> ReloadResult:
    """Load the file and swap if it is valid and differs; ``InvalidConfigFileError`` otherwise.
    The new set is built by the registry's builder."""
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
        registry.swap(candidate)
        if store is not None and candidate.embedder is not current.embedder:
            entry = config.entry(settings.generation.embedding_alias)
            store.ensure_schema(  # reads and writes follow the alias again
                embedding_model=str(entry.litellm_params.get("model", entry.model_name)),
                dimensions=candidate.embedder.dimensions,
            )
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
        return ReloadResult(True, candidate.version, digest, changes, probed)
