"""The write fence in its SQLite state file: a raised fence bars new leases and waits for the
running ones, a writer waits for the fence or gives up with a retryable 503, and a fence or lease
whose holder died expires. Each actor opens the file on its own, as separate processes would."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.models.write_fence import (
    FenceLostError,
    SqliteWriteFence,
    WriteFencedError,
    fenced,
    writing,
)

pytestmark = pytest.mark.unit


class Clock:
    """Wall time plus a skew the test moves forward (a holder that stopped renewing)."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


def _fence(path: Path, clock: Clock | None = None) -> SqliteWriteFence:
    return SqliteWriteFence(path / "state" / "write-fence.db", clock=clock or time.time)


def test_a_raised_fence_waits_for_the_running_write_then_bars_new_ones(tmp_path: Path) -> None:
    events: list[str] = []
    leased, release = threading.Event(), threading.Event()

    def writer() -> None:
        with writing(_fence(tmp_path), "ingest job j1", wait_s=1):
            events.append("write begins")
            leased.set()
            release.wait(5)
            events.append("write ends")

    thread = threading.Thread(target=writer)
    thread.start()
    assert leased.wait(5)
    threading.Timer(0.3, release.set).start()
    with fenced(_fence(tmp_path), "holdfast reindex", drain_s=5):
        events.append("fence held")
        assert _fence(tmp_path).fence_holder() == "holdfast reindex"
        with (
            pytest.raises(WriteFencedError, match="holdfast reindex") as refused,
            writing(_fence(tmp_path), "DELETE", wait_s=0.2),
        ):
            events.append("a write inside the fence")  # never reached
    thread.join(5)
    assert events == ["write begins", "write ends", "fence held"]
    assert refused.value.status == 503 and refused.value.code == "writes_fenced"
    assert refused.value.retry_after_s >= 1
    with writing(_fence(tmp_path), "DELETE", wait_s=0):  # lowered: writes go on
        assert _fence(tmp_path).leases() == ["DELETE"]
    assert _fence(tmp_path).leases() == []


def test_a_writer_that_meets_the_fence_waits_for_it_to_fall(tmp_path: Path) -> None:
    raised, done = threading.Event(), threading.Event()
    lowered_at: list[float] = []

    def reindex() -> None:
        with fenced(_fence(tmp_path), "holdfast reindex", drain_s=1):
            raised.set()
            time.sleep(0.4)
            lowered_at.append(time.monotonic())

    thread = threading.Thread(target=reindex)
    thread.start()
    assert raised.wait(5)
    with writing(_fence(tmp_path), "ingest job j2", wait_s=5):
        began = time.monotonic()
        done.set()
    thread.join(5)
    assert lowered_at and began >= lowered_at[0]


def test_a_second_fence_is_refused_and_a_stuck_write_refuses_the_fence(tmp_path: Path) -> None:
    with (
        fenced(_fence(tmp_path), "first", drain_s=1),
        pytest.raises(WriteFencedError, match="first holds"),
        fenced(_fence(tmp_path), "second", drain_s=1),
    ):
        pass
    with writing(_fence(tmp_path), "ingest job slow", wait_s=0):
        with (
            pytest.raises(WriteFencedError, match="still running") as refused,
            fenced(_fence(tmp_path), "holdfast reindex", drain_s=0.3),
        ):
            pass
        assert "ingest job slow" in str(refused.value)
        # the refused fence was lowered again: the running writer's peers are not held back
        assert _fence(tmp_path).fence_holder() is None


def test_a_fence_and_a_lease_whose_holders_died_expire(tmp_path: Path) -> None:
    clock = Clock()
    dead = _fence(tmp_path, clock)
    assert dead.try_lease("a crashed writer", ttl_s=30) is not None
    assert dead.try_fence("a crashed reindex", ttl_s=30) is not None
    assert dead.fence_holder() == "a crashed reindex"
    assert dead.try_lease("a live writer", ttl_s=30) is None
    clock.skew = 31  # nobody renewed them
    assert dead.fence_holder() is None and dead.leases() == []
    with fenced(_fence(tmp_path, clock), "next reindex", drain_s=0):
        pass


def test_a_fence_that_expired_under_its_holder_stops_the_switch(tmp_path: Path) -> None:
    clock = Clock()
    fence = _fence(tmp_path, clock)
    with (
        pytest.raises(FenceLostError, match="nothing was switched"),
        fenced(fence, "holdfast reindex", drain_s=0, ttl_s=0.3) as hold,
    ):
        clock.skew = 1.0  # the holder could not renew in time; another may take it now
        assert fence.try_fence("someone else", ttl_s=30) is not None
        time.sleep(0.3)  # a renewal round
        hold.check()
    assert fence.fence_holder() == "someone else"  # ours was not the one lowered
