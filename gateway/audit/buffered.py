"""Audit records written off the request path, in batches, and never dropped on the floor.

Writing the record inside the request (a thread hop and a committed insert per request) was one
of the gateway's largest costs per search. Here the request only enqueues; one writer thread
takes whatever has queued (up to ``batch`` records) and appends it to the real log. The writer
waits ``linger_s`` after a batch's first record for more to join it: a committed transaction of
one record cost 0.18 ms of CPU, eight records 0.03 ms each, and at a steady trickle of searches
each record used to commit alone (a record waits that long at most; a crash of the process can
lose what waits, as it can lose what is queued). While it lingers the writer sleeps: records
that join are not handed over one by one (a wake-up per record cost the writer more CPU than
its share of the insert, and each request a thread wake-up). A query first waits for
everything queued before it, and cuts the linger short, so a caller reads its own writes at
once. When the log is down the writer keeps the records and retries with backoff; the queue is
bounded, so a log that stays down slows requests (back-pressure) instead of losing records. A
record the log refuses by its content (``AuditRecordRefusedError``) is found by halving its
batch, then counted and logged as lost: retrying it would stall the queue, and with it every
request. ``close`` flushes; records that still cannot be written at shutdown are counted and
logged as lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from gateway.audit.records import AuditFilter, AuditPage, AuditRecord
from gateway.audit.store import AuditLog, AuditRecordRefusedError
from services.errors import HoldfastError

log = logging.getLogger("holdfast.audit")


class BufferedAuditLog:
    """An ``AuditLog`` whose ``append`` returns at once; ``query`` sees every earlier append."""

    def __init__(
        self,
        inner: AuditLog,
        *,
        batch: int = 256,
        max_queued: int = 50_000,
        retry_s: float = 0.5,
        linger_s: float = 0.05,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._inner = inner
        self._batch = batch
        self._retry_s = retry_s
        self._linger_s = linger_s
        self._on_failure = on_failure
        self._queue: queue.Queue[AuditRecord | None] = queue.Queue(max_queued)
        self._written = threading.Condition()
        self._hurry = threading.Event()  # set by flush() and close(): write without lingering
        self._enqueued = 0
        self._done = 0
        self._stopping = False
        self._stopping_at = float("inf")
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def offer(self, record: AuditRecord) -> bool:
        """Queue ``record`` without waiting; False when the queue is full (the log is down and
        the caller should ``append`` from a worker thread, which waits for room)."""
        with self._written:
            try:
                self._queue.put_nowait(record)
            except queue.Full:
                return False
            self._enqueued += 1
        return True

    def append(self, record: AuditRecord) -> AuditRecord:
        """Queue ``record``, waiting while the queue is full (back-pressure, never a drop)."""
        while not self.offer(record):
            time.sleep(0.05)
        return record

    def append_many(self, records: Sequence[AuditRecord]) -> int:
        for record in records:
            self.append(record)
        return len(records)

    def query(self, flt: AuditFilter) -> AuditPage:
        self.flush()
        return self._inner.query(flt)

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        with self._written:
            target = self._enqueued
            if self._done >= target:
                return True
        self._hurry.set()
        with self._written:
            return self._written.wait_for(lambda: self._done >= target, timeout=timeout_s)

    @property
    def inner(self) -> AuditLog:
        return self._inner

    @property
    def pending(self) -> int:
        with self._written:
            return self._enqueued - self._done

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (retrying until ``timeout_s``), then stop the writer."""
        self._stopping_at = time.monotonic() + timeout_s
        self._stopping = True
        self._queue.put(None)
        self._hurry.set()
        self._thread.join(timeout_s + 1.0)
        lost = self.pending
        if lost:
            for _ in range(lost):
                self._on_failure()
            log.error("%d audit record(s) lost at shutdown: the audit log is unavailable", lost)

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            self._write(batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[AuditRecord], bool]:
        """The records of the next write, and whether close() asked the writer to stop. Waits
        for the first record, then sleeps up to ``linger_s`` while others queue, unless flush()
        or close() asks for the write now or a batch's worth has queued already."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        if self._queue.qsize() < self._batch - 1:
            self._hurry.wait(self._linger_s)
        while len(batch) < self._batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                # every flush so far asked for records that are queued by now: clear its
                # request, then take what joined in between (a flush after the clear keeps
                # its request for the next batch)
                self._hurry.clear()
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[AuditRecord]) -> None:
        """The whole batch in one transaction, retried until it lands (or shutdown gives up)."""
        if not batch:
            return
        delay = self._retry_s
        while True:
            try:
                self._inner.append_many(batch)
                break
            except AuditRecordRefusedError as exc:
                self._without_refused(batch, exc)
                return
            except HoldfastError:
                if self._stopping and time.monotonic() >= self._stopping_at:
                    return  # counted as lost by close()
                log.warning("audit log unavailable; %d record(s) wait, retrying", len(batch))
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._count_done(len(batch))

    def _without_refused(self, batch: list[AuditRecord], exc: AuditRecordRefusedError) -> None:
        """Write the batch in halves until the refused records are alone, and drop those."""
        if len(batch) > 1:
            middle = len(batch) // 2
            self._write(batch[:middle])
            self._write(batch[middle:])
            return
        (record,) = batch
        self._on_failure()
        log.error(
            "audit record refused by the log and lost (%s): %s %s, request %s",
            exc,
            record.kind,
            record.endpoint,
            record.request_id,
        )
        self._count_done(1)

    def _count_done(self, records: int) -> None:
        with self._written:
            self._done += records
            self._written.notify_all()
