"""Per-key rate limits, kept by the ``limits`` library: in this process's memory (one host) or in
Redis, so that every gateway replica draws on the same allowance.

The two knobs map onto ``limits``' moving window: a key may send at most ``burst`` requests in
any window of ``burst / rate`` seconds (``window_of``). Over a long run that is the sustained rate,
and a quiet key may send its whole burst at once, as the token bucket this replaced allowed. Two
differences: ``limits`` counts windows in whole seconds, so the window is rounded up (the sustained
rate is never above the configured one); and capacity returns as the oldest requests leave the
window rather than one token every 1/rate, so a key that spent its burst at once waits one window.
The moving window is exact (no fixed-window edge doubling); ``Retry-After`` is the time until the
oldest request in the window leaves it, i.e. until the next request would pass. In Redis each
request is stamped with the gateway's clock, so replicas need synchronised clocks (NTP): a skew
of s seconds moves a key's window by up to s.

Redis unreachable: fail closed, 503 ``rate_limiter_unavailable``. The limit is what stops a leaked
key from draining the corpus and one tenant from starving the shared models; failing open would
lift it on every replica at once, for as long as someone can keep Redis away. Every Redis call has
a short timeout (``timeout_s``, no retries), so an outage costs a caller half a second, not a hang;
the change of state is logged once each way. A one-host install keeps the in-memory default and
has no such dependency.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.errors import ConfigurationError, StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.errors import BackendUnavailableError, ConfigError, RateLimitedError

log = logging.getLogger("holdfast.gateway.rate_limit")

KEY_PREFIX = "holdfast-rate"
SHARED_SCHEMES = ("redis://", "rediss://", "redis+unix://")


class RateLimitExceeded(RateLimitedError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limit exceeded; retry after {math.ceil(retry_after_s)}s")
        self.retry_after_s = retry_after_s


class RateLimiterUnavailableError(BackendUnavailableError):
    code, title = "rate_limiter_unavailable", "The rate-limit store is unavailable"


def window_of(rate_per_minute: float, burst: int) -> RateLimitItem:
    """``burst`` requests per ``ceil(burst / rate)`` seconds (at least 1 s)."""
    if rate_per_minute <= 0 or burst < 1:
        raise ConfigError("limits.rate_per_minute must be > 0 and limits.burst >= 1")
    seconds = max(1, math.ceil(burst * 60.0 / rate_per_minute - 1e-9))
    return RateLimitItemPerSecond(burst, seconds)


class InlineExpiryMemoryStorage(MemoryStorage):
    """``limits``' in-memory storage, with its clean-up run by the requests themselves.

    The library's storage starts a new ``threading.Timer`` thread on a request whenever the
    previous one (10 ms) has ended, so at a steady trickle nearly every request starts a thread
    on the event loop: 0.16 ms of each ``/v1/search`` at concurrency 1. Here the first request
    after ``every_s`` runs the same clean-up (drop moving-window entries and counters that have
    expired) in its own thread, and no thread is started. The clean-up only bounds memory: the
    limit itself reads each window by its timestamps."""

    def __init__(self, every_s: float = 1.0, clock: Any = time.monotonic) -> None:
        super().__init__()
        self._every_s = every_s
        self._clock = clock
        self._next_cleanup = clock() + every_s
        self._cleaning = threading.Lock()
        self.cleanups = 0

    # Overrides the library's name-mangled private method (called on every count); the pinned
    # version's behaviour is checked by tests/unit/gateway/test_rate_limit.py.
    def _MemoryStorage__schedule_expiry(self) -> None:
        if self._clock() < self._next_cleanup or not self._cleaning.acquire(blocking=False):
            return
        try:
            self._next_cleanup = self._clock() + self._every_s
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
            self.cleanups += 1
        finally:
            self._cleaning.release()


def _storage(url: str, timeout_s: float) -> Storage:
    """No I/O here: the Redis client connects on its first call."""
    if not url or url.startswith("memory://"):
        return InlineExpiryMemoryStorage()
    if not url.startswith(SHARED_SCHEMES):
        raise ConfigError("limits.storage_url must be empty, memory:// or redis://")
    options: dict[str, Any] = {
        "key_prefix": KEY_PREFIX,
        "wrap_exceptions": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),  # redis-py retries 3 times by default: one bounded try
    }
    try:
        return _sync(storage_from_string(url, **options))
    except (ConfigurationError, ValueError) as exc:
        raise ConfigError(f"limits.storage_url is unusable: {type(exc).__name__}") from exc


def _sync(storage: object) -> Storage:
    if not isinstance(storage, Storage):  # an async+ scheme: the routes call check() in threads
        raise ConfigError("limits.storage_url: use redis://, not an async+ scheme")
    return storage


class RateLimiter:
    """One moving window per key, in memory (``storage_url`` empty) or shared through Redis."""

    def __init__(
        self, rate_per_minute: float, burst: int, storage_url: str = "", timeout_s: float = 0.5
    ) -> None:
        self.item = window_of(rate_per_minute, burst)
        self.shared = bool(storage_url) and not storage_url.startswith("memory://")
        self._storage = _storage(storage_url, timeout_s)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._lock = threading.Lock()
        self._refused_while_down = 0  # > 0 while the store is unreachable

    def check(self, key: str) -> None:
        """Count one request for ``key`` or raise with the wait until the next would pass."""
        who = hashlib.sha256(key.encode()).hexdigest()[:32]  # no principal names in Redis
        try:
            if self._limiter.hit(self.item, who):
                self._reachable()
                return
            reset_at = self._limiter.get_window_stats(self.item, who).reset_time
        except StorageError as exc:
            self._unreachable(exc.storage_error)
            raise RateLimiterUnavailableError(
                "the rate-limit store did not answer; request refused (fails closed)"
            ) from exc.storage_error
        self._reachable()
        raise RateLimitExceeded(max(1.0, reset_at - time.time()))

    def _unreachable(self, cause: Exception) -> None:
        with self._lock:
            self._refused_while_down += 1
            first = self._refused_while_down == 1
        if first:
            log.warning(
                "rate-limit store unreachable (%s): authenticated requests get 503 until it "
                "answers again",
                type(cause).__name__,
            )

    def _reachable(self) -> None:
        if not self._refused_while_down:
            return
        with self._lock:
            refused, self._refused_while_down = self._refused_while_down, 0
        if refused:
            log.warning("rate-limit store answers again; %d requests were refused", refused)

    def close(self) -> None:
        """Drop the Redis connections (nothing to do in memory)."""
        client = getattr(self._storage, "storage", None) if self.shared else None
        close = getattr(client, "close", None)
        if close is not None:
            close()
