"""Coalescer: concurrent calls share batches, in order, never more than the cap, and a failed
batch fails its own callers only. Pure logic with real threads; the batch function is a list
comprehension that records what it was given."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from services.coalescer import Coalescer

pytestmark = pytest.mark.unit


class Recorder:
    """Multiplies by ten; the first batch waits for ``release`` so others can queue behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        self.fail_on: int | None = None

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.started.set()
            assert self.release.wait(10)
        if self.fail_on in items:
            raise ValueError(f"cannot do {self.fail_on}")
        return [i * 10 for i in items]


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _queue_behind_first(
    coalescer: Coalescer[int, int], recorder: Recorder, pool: ThreadPoolExecutor, items: list[int]
) -> tuple[Future[int], list[Future[int]]]:
    first = pool.submit(coalescer, 0)
    assert recorder.started.wait(10)
    rest = []
    for n, item in enumerate(items, start=1):
        rest.append(pool.submit(coalescer, item))
        _until(lambda n=n: coalescer.waiting == n)  # queued in this order
    recorder.release.set()
    return first, rest


def test_a_lone_call_runs_at_once_as_a_batch_of_one() -> None:
    recorder = Recorder()
    recorder.release.set()
    coalescer = Coalescer(recorder, max_batch=8)
    assert coalescer(7) == 70
    assert recorder.batches == [[7]]
    assert (coalescer.batches, coalescer.items) == (1, 1)


def test_calls_made_while_a_batch_runs_share_the_next_one() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder, max_batch=8)
    with ThreadPoolExecutor(8) as pool:
        first, rest = _queue_behind_first(coalescer, recorder, pool, [1, 2, 3, 4, 5])
        assert first.result(10) == 0
        assert [f.result(10) for f in rest] == [10, 20, 30, 40, 50]
    assert recorder.batches == [[0], [1, 2, 3, 4, 5]]
    assert (coalescer.batches, coalescer.items, coalescer.waiting) == (2, 6, 0)


def test_no_batch_is_larger_than_the_cap() -> None:
    recorder = Recorder()
    coalescer = Coalescer(recorder, max_batch=2)
    with ThreadPoolExecutor(8) as pool:
        _, rest = _queue_behind_first(coalescer, recorder, pool, [1, 2, 3, 4, 5])
        assert [f.result(10) for f in rest] == [10, 20, 30, 40, 50]
    assert recorder.batches == [[0], [1, 2], [3, 4], [5]]


def test_a_failed_batch_fails_its_own_callers_and_the_next_batch_still_runs() -> None:
    recorder = Recorder()
    recorder.fail_on = 2
    coalescer = Coalescer(recorder, max_batch=2)
    with ThreadPoolExecutor(8) as pool:
        first, rest = _queue_behind_first(coalescer, recorder, pool, [1, 2, 3])
        assert first.result(10) == 0
        for future in rest[:2]:
            with pytest.raises(ValueError, match="cannot do 2"):
                future.result(10)
        assert rest[2].result(10) == 30
    assert recorder.batches == [[0], [1, 2], [3]]
    recorder.fail_on = None
    assert coalescer(4) == 40  # nothing left stuck


def test_a_batch_function_that_loses_results_is_an_error_not_a_wrong_answer() -> None:
    coalescer: Coalescer[int, int] = Coalescer(lambda items: items[:-1], max_batch=4)
    with pytest.raises(RuntimeError, match="a batch of 1 returned 0 results"):
        coalescer(1)


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(lambda items: items, max_batch=0)
