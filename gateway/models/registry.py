"""The live set of models, swapped atomically.

A request takes ``registry.current()`` once (or reads ``components.router`` / ``.embedder``,
which do the same) and keeps that object for its whole life: a swap replaces the reference, never
mutates the old set, so requests in flight finish on the old router and embedder.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from gateway.models.config import ModelsConfig
from services.litellm_router import LiteLLMRouter
from services.ports import Embedder, Reranker


@dataclass(frozen=True, slots=True)
class ModelSet:
    """Everything built from one ``models.yaml``; immutable once published."""

    config: ModelsConfig
    router: LiteLLMRouter
    embedder: Embedder
    reranker: Reranker | None
    version: int = 1
    digest: str = ""


class ModelRegistry:
    """Holds the current ``ModelSet``. Reads are a plain attribute load (atomic in CPython)."""

    def __init__(self, initial: ModelSet) -> None:
        self._current = initial
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
