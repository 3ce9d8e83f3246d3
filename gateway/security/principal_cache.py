"""Verified API keys remembered for a few seconds, so a request does not open the key store.

A key store lookup (a database round trip, on SQLite a new connection) was the first cost of
every request. Only successful lookups are remembered, under the key's SHA-256, never the key;
an unknown key always reaches the store. Revocation takes effect on every replica within
``ttl_s`` (a revoke from the CLI or another replica cannot reach this process's memory), and at
once in this process when it revokes through ``forget``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from gateway.security.keys import Principal


class PrincipalCache:
    """A bounded TTL cache in front of ``lookup`` (the key store's ``authenticate``)."""

    def __init__(
        self,
        lookup: Callable[[str], Principal | None],
        *,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: str) -> Principal | None:
        """The remembered principal of ``key`` if it has not expired; never looks it up."""
        if self._ttl_s <= 0:
            return None
        return self._remembered(_digest(key))

    def authenticate(self, key: str) -> Principal | None:
        if self._ttl_s <= 0:
            return self._lookup(key)
        digest = _digest(key)
        remembered = self._remembered(digest)
        if remembered is not None:
            return remembered
        now = self._clock()
        principal = self._lookup(key)
        with self._lock:
            if principal is None:
                self._entries.pop(digest, None)
                return None
            self._entries[digest] = (now + self._ttl_s, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return principal

    def _remembered(self, digest: str) -> Principal | None:
        with self._lock:
            hit = self._entries.get(digest)
            if hit is not None and hit[0] > self._clock():
                self._entries.move_to_end(digest)
                return hit[1]
        return None

    def forget(self, key_id: str = "") -> None:
        """Drop one key's entries (by key id), or every entry when no id is given."""
        with self._lock:
            if not key_id:
                self._entries.clear()
                return
            for digest in [d for d, (_, p) in self._entries.items() if p.key_id == key_id]:
                del self._entries[digest]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
