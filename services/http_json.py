"""JSON over HTTP for the embedding and rerank adapters: one timeout, bounded retries, and
vendor (httpx) exceptions translated into Holdfast's at this boundary only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from services.errors import BackendTimeoutError, BackendUnavailableError

# Statuses worth one more try: the server is busy or restarting, not refusing the request.
_RETRYABLE = {429, 502, 503, 504}
# Between tries: 0.1 s, 0.2 s, 0.4 s ... at most 2 s, each with up to 0.1 s of jitter.
_BACKOFF = wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1)


def _transient(exc: BaseException) -> bool:
    """A transport error or timeout, or a busy status: worth another try."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in _RETRYABLE
    return isinstance(exc, httpx.TransportError)  # timeouts included


@contextmanager
def translated(what: str, unavailable: type[BackendUnavailableError]) -> Iterator[None]:
    """Re-raise httpx errors as Holdfast errors naming ``what`` (never the payload)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise BackendTimeoutError(f"{what} timed out") from exc
    except httpx.HTTPStatusError as exc:
        raise unavailable(f"{what} answered HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise unavailable(f"{what} is unreachable: {type(exc).__name__}") from exc
    except ValueError as exc:  # a body that is not the documented JSON
        raise unavailable(f"{what} sent an unexpected response: {exc}") from exc


def post_json(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    *,
    what: str,
    unavailable: type[BackendUnavailableError],
    timeout_s: float,
    max_retries: int,
) -> Any:
    """POST ``body`` and return the decoded JSON; transport errors, timeouts and busy statuses
    are tried again (``max_retries`` times, with backoff), each try within ``timeout_s``."""

    def attempt() -> Any:
        response = client.post(url, json=body, timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    retrying = Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=_BACKOFF,
        retry=retry_if_exception(_transient),
        reraise=True,  # the last error itself, translated below
    )
    with translated(what, unavailable):
        return retrying(attempt)


def get_ok(client: httpx.Client, url: str, *, timeout_s: float) -> tuple[bool, str]:
    """A health probe: (answers below 500, detail)."""
    try:
        response = client.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return False, f"unreachable: {type(exc).__name__}"
    ok = response.status_code < 500
    return ok, "" if ok else f"HTTP {response.status_code}"


def float_vectors(raw: Any, expected: int, what: str) -> list[list[float]]:
    """Check that ``raw`` is ``expected`` equal-length lists of numbers."""
    if not isinstance(raw, list) or len(raw) != expected:
        raise ValueError(f"{what}: expected {expected} vectors")
    vectors = [[float(x) for x in v] for v in raw]
    if len({len(v) for v in vectors}) > 1:
        raise ValueError(f"{what}: vectors of different lengths")
    return vectors
