"""The live set of models, swapped atomically, and the builder of the next one.

A request takes ``registry.current()`` once (or reads ``components.router`` / ``.embedder``,
which do the same) and keeps that object for its whole life: a swap replaces the reference, never
mutates the old set, so requests in flight finish on the old router and embedder.

Which adapter serves an alias is the composition root's knowledge: it hands the registry a
``ModelSetBuilder``, and a reload builds the next set through it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.models.config import ModelEntry, ModelsConfig
from services.ports import Embedder, ManagedRouter, Reranker


@dataclass(frozen=True, slots=True)
class ModelSet:
    """Everything built from one ``models.yaml``; immutable once published."""

    config: ModelsConfig
    router: ManagedRouter
    embedder: Embedder
    reranker: Reranker | None
    version: int = 1
    digest: str = ""


class ModelSetBuilder(Protocol):
    """Builds adapters for model entries (no I/O until ``warm_up``)."""

    def build(self, config: ModelsConfig, *, previous: ModelSet | None = None) -> ModelSet:
        """Adapters for ``config``; entries unchanged since ``previous`` reuse its objects."""
        ...

    def embedder_for(self, entry: ModelEntry) -> Embedder: ...

    def reranker_for(self, entry: ModelEntry) -> Reranker: ...

    def warm_up(self, models: ModelSet) -> None:
        """Open the set's clients and load its in-process models."""
        ...


def config_digest(config: ModelsConfig) -> str:
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


class ModelRegistry:
    """Holds the current ``ModelSet``. Reads are a plain attribute load (atomic in CPython)."""

    def __init__(self, initial: ModelSet, builder: ModelSetBuilder) -> None:
        self._current = initial
        self.builder = builder
        self._swap_lock = threading.Lock()
        # serialises whole reloads (file read, probes, swap) from the API, SIGHUP and the watcher
        self.reload_lock = threading.Lock()

    def current(self) -> ModelSet:
        return self._current

    def swap(self, new: ModelSet) -> ModelSet:
        """Publish ``new`` and return the set it replaced."""
        with self._swap_lock:
            old = self._current
            self._current = new
        return old


def close_quietly(component: Any) -> None:
    close = getattr(component, "close", None)
    if callable(close):
        close()
