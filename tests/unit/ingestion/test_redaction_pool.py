"""How the redaction pool shares texts among its worker processes, and recovers when one dies."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import pytest

from ingestion.redaction_pool import PooledRedactor, split_even
from services.records import EntitySpan

pytestmark = pytest.mark.unit


def test_every_worker_gets_a_share_when_there_are_enough_texts() -> None:
    texts = [str(i) for i in range(10)]
    batches = split_even(texts, 2, 64)
    assert [len(b) for b in batches] == [5, 5]
    assert [t for b in batches for t in b] == texts  # order kept


def test_no_batch_is_longer_than_the_most_allowed() -> None:
    batches = split_even([str(i) for i in range(300)], 2, 64)
    assert max(len(b) for b in batches) <= 64 and sum(len(b) for b in batches) == 300


def test_few_texts_make_few_batches() -> None:
    assert split_even(["a"], 4, 64) == [["a"]]
    assert split_even([], 2, 64) == []


class _DiesOnPoison:
    """A redactor whose process dies on the text "poison" (as an out-of-memory kill would)."""

    def find(self, text: str, **_: object) -> list[EntitySpan]:
        if text == "poison":
            os._exit(9)
        return []


def test_a_broken_pool_raises_for_a_retry_and_the_next_batch_gets_a_fresh_pool() -> None:
    pool = PooledRedactor(_DiesOnPoison, workers=1, timeout_s=60)  # type: ignore[arg-type]
    try:
        with pytest.raises(BrokenProcessPool):
            pool.find_many(["fine", "poison"])
        assert pool.find_many(["fine"]) == [[]]
    finally:
        pool.close()
