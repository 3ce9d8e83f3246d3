"""The buffered audit log: requests only enqueue, readers see their own writes, a log that is
down is retried (nothing dropped), and what cannot be written by shutdown is counted as lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.audit.buffered import BufferedAuditLog
from gateway.audit.records import AuditFilter, AuditPage, AuditRecord
from gateway.audit.store import AuditRecordRefusedError, AuditUnavailableError, SqliteAuditLog

pytestmark = pytest.mark.unit


def record(n: int) -> AuditRecord:
    return AuditRecord(
        kind="request", principal=f"p{n}", endpoint="POST /v1/search", decision="answered"
    )


class Flaky:
    """The real SQLite log behind a switch that makes it unavailable."""

    def __init__(self, inner: SqliteAuditLog) -> None:
        self.inner = inner
        self.down = threading.Event()
        self.failures = 0

    def append(self, r: AuditRecord) -> AuditRecord:
        if self.down.is_set():
            self.failures += 1
            raise AuditUnavailableError("the audit log is down")
        return self.inner.append(r)

    def append_many(self, records: Sequence[AuditRecord]) -> int:
        if self.down.is_set():
            self.failures += 1
            raise AuditUnavailableError("the audit log is down")
        return self.inner.append_many(records)

    def query(self, flt: AuditFilter) -> AuditPage:
        return self.inner.query(flt)


def test_a_query_sees_every_record_appended_before_it(tmp_path: Path) -> None:
    log = BufferedAuditLog(SqliteAuditLog(tmp_path / "audit.db"))
    for n in range(300):
        assert log.offer(record(n))
    page = log.query(AuditFilter(limit=500))
    assert len(page.records) == 300
    assert {r.principal for r in page.records} == {f"p{n}" for n in range(300)}
    log.close()


def test_a_log_that_is_down_is_retried_and_nothing_is_lost(tmp_path: Path) -> None:
    flaky = Flaky(SqliteAuditLog(tmp_path / "audit.db"))
    lost: list[int] = []
    log = BufferedAuditLog(flaky, retry_s=0.01, on_failure=lambda: lost.append(1))
    flaky.down.set()
    for n in range(5):
        log.append(record(n))
    assert not log.flush(timeout_s=0.2)  # nothing can be written yet
    assert flaky.failures >= 1 and log.pending == 5
    flaky.down.clear()
    assert log.flush(timeout_s=5.0)
    assert len(flaky.query(AuditFilter(limit=50)).records) == 5
    log.close()
    assert lost == []


def test_a_full_queue_refuses_the_offer_so_the_caller_can_wait(tmp_path: Path) -> None:
    flaky = Flaky(SqliteAuditLog(tmp_path / "audit.db"))
    flaky.down.set()
    log = BufferedAuditLog(flaky, max_queued=2, retry_s=0.01)
    accepted = sum(log.offer(record(n)) for n in range(10))
    assert accepted <= 3  # two queued, and perhaps one taken by the writer
    flaky.down.clear()
    assert log.flush(timeout_s=5.0)
    log.close()


def test_records_that_cannot_be_written_by_shutdown_are_counted_as_lost(tmp_path: Path) -> None:
    flaky = Flaky(SqliteAuditLog(tmp_path / "audit.db"))
    flaky.down.set()
    lost: list[int] = []
    log = BufferedAuditLog(flaky, retry_s=0.01, on_failure=lambda: lost.append(1))
    for n in range(3):
        log.append(record(n))
    log.close(timeout_s=0.3)
    assert len(lost) == 3


class RefusesOne:
    """The real SQLite log, refusing (as PostgreSQL refuses a value its column cannot hold) any
    batch that holds one poisoned record."""

    def __init__(self, inner: SqliteAuditLog, poisoned: str) -> None:
        self.inner, self.poisoned = inner, poisoned

    def append(self, r: AuditRecord) -> AuditRecord:
        return self.inner.append(r)

    def append_many(self, records: Sequence[AuditRecord]) -> int:
        if any(r.principal == self.poisoned for r in records):
            raise AuditRecordRefusedError("audit database: DataError")
        return self.inner.append_many(records)

    def query(self, flt: AuditFilter) -> AuditPage:
        return self.inner.query(flt)


def test_a_record_the_log_refuses_is_counted_lost_and_the_rest_of_its_batch_lands(
    tmp_path: Path,
) -> None:
    refusing = RefusesOne(SqliteAuditLog(tmp_path / "audit.db"), poisoned="p7")
    lost: list[int] = []
    log = BufferedAuditLog(refusing, retry_s=0.01, on_failure=lambda: lost.append(1))
    for n in range(20):
        assert log.offer(record(n))
    assert log.flush(timeout_s=5.0), "one refused record stalled the queue"
    written = {r.principal for r in refusing.query(AuditFilter(limit=50)).records}
    assert written == {f"p{n}" for n in range(20)} - {"p7"}
    assert lost == [1] and log.pending == 0
    log.append(record(99))  # and the log goes on
    assert log.flush(timeout_s=5.0)
    log.close()


class Batches:
    """The real SQLite log, noting the size of each batch written to it."""

    def __init__(self, inner: SqliteAuditLog) -> None:
        self.inner = inner
        self.sizes: list[int] = []

    def append(self, r: AuditRecord) -> AuditRecord:
        return self.inner.append(r)

    def append_many(self, records: Sequence[AuditRecord]) -> int:
        self.sizes.append(len(records))
        return self.inner.append_many(records)

    def query(self, flt: AuditFilter) -> AuditPage:
        return self.inner.query(flt)


def test_records_offered_while_the_writer_lingers_share_one_transaction(tmp_path: Path) -> None:
    batches = Batches(SqliteAuditLog(tmp_path / "audit.db"))
    log = BufferedAuditLog(batches, linger_s=2.0)
    for n in range(5):
        assert log.offer(record(n))
    assert log.flush(timeout_s=5.0)
    assert batches.sizes == [5]
    log.close()


def test_a_query_and_a_shutdown_do_not_wait_for_the_linger(tmp_path: Path) -> None:
    """With a linger far longer than the timeouts, a reader still sees its own writes and a
    shutdown still writes everything (a flush or close that waited would time out and fail)."""
    batches = Batches(SqliteAuditLog(tmp_path / "audit.db"))
    lost: list[int] = []
    log = BufferedAuditLog(batches, linger_s=60.0, on_failure=lambda: lost.append(1))
    log.offer(record(1))
    assert log.flush(timeout_s=5.0)
    assert [r.principal for r in log.query(AuditFilter()).records] == ["p1"]
    assert log.flush(timeout_s=5.0)  # nothing waits: at once
    log.offer(record(2))
    log.close(timeout_s=2.0)
    assert lost == [] and batches.sizes == [1, 1]
    assert {r.principal for r in batches.query(AuditFilter()).records} == {"p1", "p2"}


def test_records_joining_a_lingering_batch_stay_queued_until_it_is_written(
    tmp_path: Path,
) -> None:
    """The lingering writer sleeps: a record that joins is not handed over as it arrives (a
    wake-up per request), it waits in the queue for the batch's one write."""
    batches = Batches(SqliteAuditLog(tmp_path / "audit.db"))
    log = BufferedAuditLog(batches, linger_s=60.0)
    log.offer(record(0))
    deadline = time.monotonic() + 5.0
    while log._queue.qsize() and time.monotonic() < deadline:  # the writer took the first
        time.sleep(0.01)
    for n in range(1, 5):
        log.offer(record(n))
    time.sleep(0.2)
    assert log._queue.qsize() == 4 and batches.sizes == []
    assert log.flush(timeout_s=5.0)
    assert batches.sizes == [5]
    log.close()


def test_a_flush_behind_more_than_a_batch_does_not_wait_for_the_linger(tmp_path: Path) -> None:
    batches = Batches(SqliteAuditLog(tmp_path / "audit.db"))
    log = BufferedAuditLog(batches, batch=8, linger_s=60.0)
    for n in range(20):
        assert log.offer(record(n))
    assert log.flush(timeout_s=5.0)
    assert sum(batches.sizes) == 20 and max(batches.sizes) <= 8
    log.close()
