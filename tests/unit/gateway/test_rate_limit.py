"""The rate-limit knobs map onto a ``limits`` moving window; the in-memory limiter keeps the burst,
the per-key split and an honest Retry-After; an unreachable shared store fails closed, fast."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.container import build_rate_limiter
from gateway.security.rate_limit import (
    InlineExpiryMemoryStorage,
    RateLimiter,
    RateLimiterUnavailableError,
    RateLimitExceeded,
    window_of,
)
from gateway.settings import load_settings
from services.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("rate_per_minute", "burst", "amount", "seconds"),
    [
        (120, 20, 20, 10),  # the defaults: 20 at once, 120 a minute sustained
        (6, 2, 2, 20),
        (60, 3, 3, 3),
        (1000, 20, 20, 2),  # 1.2 s rounds up: sustained 600/min, never above the knob
        (0.001, 3, 3, 180_000),
        (6000, 1, 1, 1),  # at least one second
    ],
)
def test_rate_and_burst_map_to_burst_requests_per_window_of_burst_over_rate(
    rate_per_minute: float, burst: int, amount: int, seconds: int
) -> None:
    item = window_of(rate_per_minute, burst)
    assert (item.amount, item.get_expiry()) == (amount, seconds)
    assert item.amount * 60 / item.get_expiry() <= rate_per_minute + 1e-9


@pytest.mark.parametrize(("rate_per_minute", "burst"), [(0, 5), (-1, 5), (60, 0)])
def test_a_limit_that_admits_nothing_is_a_config_error(rate_per_minute: float, burst: int) -> None:
    with pytest.raises(ConfigError):
        window_of(rate_per_minute, burst)


def test_settings_default_to_memory_and_a_redis_url_makes_the_limiter_shared(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = build_rate_limiter(load_settings())
    assert not default.shared
    assert (default.item.amount, default.item.get_expiry()) == (20, 10)

    monkeypatch.setenv("HOLDFAST_LIMITS__STORAGE_URL", "redis://:s3cret@10.0.0.5:6379/2")
    monkeypatch.setenv("HOLDFAST_LIMITS__BURST", "4")
    monkeypatch.setenv("HOLDFAST_LIMITS__RATE_PER_MINUTE", "4")
    settings = load_settings()
    assert "s3cret" not in repr(settings.limits)
    shared = build_rate_limiter(settings)  # no I/O: Redis is first called by a request
    assert shared.shared
    assert (shared.item.amount, shared.item.get_expiry()) == (4, 60)


@pytest.mark.parametrize(
    "limits",
    [
        {"storage_url": "http://cache:6379"},
        {"storage_url": "memcached://cache:11211"},
        {"rate_per_minute": 0},
        {"burst": 0},
        {"storage_timeout_s": 5},  # every store call stays within half a second
    ],
)
def test_unusable_limits_settings_are_refused(
    isolated_env: Path, limits: dict[str, object]
) -> None:
    with pytest.raises(ValidationError):
        load_settings(limits=limits)


def test_memory_limiter_allows_the_burst_then_refuses_per_key_until_the_window_passes() -> None:
    limiter = RateLimiter(rate_per_minute=180, burst=3)  # 3 per 1 s
    for _ in range(3):
        limiter.check("k")
    with pytest.raises(RateLimitExceeded) as refused:
        limiter.check("k")
    assert 1.0 <= refused.value.retry_after_s <= 1.0 + 1e-6
    assert refused.value.status == 429
    limiter.check("other")  # counts are per key
    time.sleep(1.05)  # the oldest of the burst has left the window
    limiter.check("k")


def test_counting_in_memory_starts_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's own storage started a timer thread on most requests (one per 10 ms)."""
    limiter = RateLimiter(rate_per_minute=6000, burst=100)
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread)
        original(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for _ in range(5):
        limiter.check("k")
        time.sleep(0.015)  # longer than the library's 10 ms timer
    assert started == []


def test_expired_entries_are_cleaned_up_by_a_later_request_at_most_once_a_period() -> None:
    now = [0.0]
    storage = InlineExpiryMemoryStorage(every_s=1.0, clock=lambda: now[0])
    for _ in range(3):
        assert storage.acquire_entry("k", limit=3, expiry=0.05)  # type: ignore[arg-type]
    assert not storage.acquire_entry("k", limit=3, expiry=0.05)  # type: ignore[arg-type]
    time.sleep(0.1)  # the three entries have expired
    now[0] = 0.5
    storage.acquire_entry("other", limit=3, expiry=60)
    assert len(storage.events["k"]) == 3 and storage.cleanups == 0  # not a period yet
    now[0] = 1.0
    storage.acquire_entry("other", limit=3, expiry=60)
    assert storage.events["k"] == [] and storage.cleanups == 1
    assert len(storage.events["other"]) == 2  # live entries stay
    storage.acquire_entry("other", limit=3, expiry=60)
    assert storage.cleanups == 1  # the next one waits for the next period


def test_retry_after_is_the_wait_until_the_oldest_request_leaves_the_window() -> None:
    limiter = RateLimiter(rate_per_minute=12, burst=2)  # 2 per 10 s
    limiter.check("k")
    time.sleep(0.3)
    limiter.check("k")
    with pytest.raises(RateLimitExceeded) as refused:
        limiter.check("k")
    assert 9.0 < refused.value.retry_after_s <= 9.8


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_shared_store_fails_closed_within_the_timeout_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RateLimiter(60, 5, storage_url=f"redis://127.0.0.1:{_closed_port()}/0")
    with caplog.at_level(logging.WARNING, logger="holdfast.gateway.rate_limit"):
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(RateLimiterUnavailableError) as refused:
                limiter.check("k")
            assert time.monotonic() - started < 1.0
    assert refused.value.status == 503 and refused.value.code == "rate_limiter_unavailable"
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1
    limiter.close()
