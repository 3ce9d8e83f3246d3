"""VectorCache: a bounded, least-recently-used store of hit vectors, keyed by what a stored
vector depends on. Pure logic; the integration suite checks the store's use of it on Weaviate."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from services.vector_cache import VectorCache, VectorKey
from services.weaviate_common import cosines

pytestmark = pytest.mark.unit


def _key(
    object_id: str, *, content_hash: str = "h", title: str = "T", section: str = "S"
) -> VectorKey:
    return VectorKey("Chunks", "minilm:384", object_id, title, section, content_hash)


def test_a_kept_vector_is_found_as_float32_and_an_unknown_one_is_not() -> None:
    cache = VectorCache(4)
    kept = cache.keep(_key("a"), [0.5, 0.25])
    found = cache.lookup([_key("a"), _key("b")])
    assert found[1] is None
    assert found[0] is kept
    assert kept.dtype == np.float32
    assert kept.tolist() == [0.5, 0.25]
    assert (cache.hits, cache.misses) == (1, 1)


def test_a_chunk_whose_text_title_section_collection_or_model_changed_gets_no_old_vector() -> None:
    cache = VectorCache(8)
    cache.keep(_key("a"), [1.0, 0.0])
    changed = [
        _key("a", content_hash="other"),
        _key("a", title="Renamed"),
        _key("a", section="Moved"),
        VectorKey("Chunks_2", "minilm:384", "a", "T", "S", "h"),  # in another collection
        VectorKey("Chunks", "bge-small:384", "a", "T", "S", "h"),  # read for another model
    ]
    assert cache.lookup(changed) == [None] * 5


def test_past_capacity_the_least_recently_used_vector_goes_first() -> None:
    cache = VectorCache(2)
    cache.keep(_key("a"), [1.0])
    cache.keep(_key("b"), [2.0])
    cache.lookup([_key("a")])  # a is now more recent than b
    cache.keep(_key("c"), [3.0])
    assert len(cache) == 2
    a, b, c = cache.lookup([_key("a"), _key("b"), _key("c")])
    assert b is None
    assert a is not None and c is not None


def test_capacity_zero_keeps_nothing_and_says_it_is_off() -> None:
    cache = VectorCache(0)
    assert not cache.enabled
    assert cache.keep(_key("a"), [1.0]).tolist() == [1.0]
    assert len(cache) == 0
    with pytest.raises(ValueError, match="negative"):
        VectorCache(-1)


def test_threads_keeping_and_looking_up_at_once_never_exceed_capacity() -> None:
    cache = VectorCache(50)
    errors: list[BaseException] = []

    def work(start: int) -> None:
        try:
            for i in range(start, start + 500):
                cache.keep(_key(str(i % 120)), [float(i)])
                cache.lookup([_key(str((i * 7) % 120))])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 500,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(cache) == 50
    assert cache.hits + cache.misses == 2000


def test_cosines_read_kept_float32_vectors_as_they_read_returned_lists() -> None:
    query = [0.3, -0.2, 0.9]
    returned = [[0.1, 0.4, 0.2], [0.0, 0.0, 0.0]]
    kept = [np.asarray(v, dtype=np.float32) for v in returned]
    assert cosines(query, [*kept, None]) == pytest.approx([*cosines(query, returned), 0.0])
