"""The stored vectors of recently returned chunks, so a search need not bring them back.

A search needs each hit's cosine similarity to the question (the refusal rule and the response
use it), and Weaviate's hybrid search returns no vector distance: the hits' vectors had to come
over the wire with every search, costing Weaviate and weaviate-client about a millisecond of
CPU each time. A chunk's vector is a pure function of the index's embedding model and the text
the model read (title, section path and body), so a vector keyed by the collection, the model,
the object and those fields never goes stale: a rewritten chunk with other text has another key,
and after a reindex to another model (which keeps the objects' ids) a search is routed for
another model. Only chunks not seen lately are
fetched, by id, in one call.

Bounded (least recently used out first) and thread-safe; vectors are kept as float32 arrays.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
StoredVector = Sequence[float] | Vector | None  # as returned by Weaviate, kept here, or none


@dataclass(frozen=True, slots=True)
class VectorKey:
    """What a stored vector depends on: where it is stored, with which model, and what the
    model read."""

    collection: str
    model: str  # the embedding model (and dimensions) the search was routed for
    object_id: str
    title: str
    section: str
    content_hash: str


class VectorCache:
    """At most ``capacity`` vectors; ``capacity`` 0 keeps none (every search brings its hits'
    vectors, as before the cache)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError("capacity cannot be negative")
        self.capacity = capacity
        self._vectors: OrderedDict[VectorKey, Vector] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0  # lookups answered here, and those that had to fetch (served on /metrics)
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def __len__(self) -> int:
        return len(self._vectors)

    def lookup(self, keys: Sequence[VectorKey]) -> list[Vector | None]:
        """The vector of each key, or None where it is not kept (each found one becomes the
        most recently used)."""
        found: list[Vector | None] = []
        with self._lock:
            for key in keys:
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                found.append(vector)
            hits = sum(v is not None for v in found)
            self.hits += hits
            self.misses += len(found) - hits
        return found

    def keep(self, key: VectorKey, vector: Sequence[float] | Vector) -> Vector:
        """Keep ``vector`` under ``key`` (dropping the least recently used past capacity) and
        return it as kept."""
        array = np.asarray(vector, dtype=np.float32)
        if not self.enabled:
            return array
        with self._lock:
            self._vectors[key] = array
            self._vectors.move_to_end(key)
            while len(self._vectors) > self.capacity:
                self._vectors.popitem(last=False)
        return array

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()
