"""Leases on ingest jobs: which worker runs a job's next batch, until when, and the heartbeat
that keeps the lease while the batch runs.

A worker claims one batch of a job at a time (``JobQueue.claim``) and holds a lease that expires
``ingestion.lease_s`` after its last renewal. While the batch runs, a ``Heartbeat`` thread renews
it every third of that. A worker that is killed stops renewing, its lease runs out and another
worker claims the job and redoes the batch (the pipeline's write order makes that idempotent). A
worker that was only slow (paused, cut off from the database) and finds its lease gone must not
write that job again: the stores refuse its writes with ``LeaseLostError``.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from services.errors import HoldfastError

log = logging.getLogger("holdfast.ingest")


class LeaseLostError(HoldfastError):
    """This worker's lease on a job expired or was taken over; the job is someone else's now."""

    status, code, title = 409, "lease_lost", "The worker no longer holds this job"


@dataclass(frozen=True, slots=True)
class Lease:
    job_id: str
    owner: str  # the worker id that holds it
    attempt: int  # claims since the job last recorded a file (1: the first try of this batch)


def new_worker_id() -> str:
    """``host/pid/nonce``: unique per worker loop, and says where a stuck lease is held."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


def local_owner_gone(owner: str) -> bool:
    """True when ``owner`` names a worker of this host whose process no longer exists: on one
    host (the SQLite store) a restarted gateway takes its dead predecessor's job at once
    instead of waiting out the lease. False for other hosts and for anything unparseable."""
    host, _, rest = owner.partition("/")
    pid_text = rest.partition("/")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def lapsed_reason(previous_owner: str | None) -> str:
    """Why a job is claimed while it still names a lease holder: that worker stopped renewing."""
    if previous_owner is None:
        return ""
    return f"worker {previous_owner} stopped renewing its lease (killed or stuck)"


class Heartbeat:
    """Renews a lease every ``every_s`` on a daemon thread while the ``with`` block runs.
    ``renew`` returns False when the lease is no longer ours; ``check()`` then raises
    ``LeaseLostError`` (a renewal that fails for a transient reason is retried next beat)."""

    def __init__(self, renew: Callable[[], bool], every_s: float, *, job_id: str) -> None:
        self._renew = renew
        self._every_s = max(0.05, every_s)
        self._job_id = job_id
        self._done = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join(self._every_s + 5.0)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        if self._lost.is_set():
            raise LeaseLostError(f"the lease on job {self._job_id} expired or was taken over")

    def _beat(self) -> None:
        while not self._done.wait(self._every_s):
            try:
                held = self._renew()
            except HoldfastError as exc:  # database briefly away: the lease may still hold
                log.warning("lease renewal of job %s failed: %s", self._job_id, exc)
                continue
            if not held:
                self._lost.set()
                return
