"""The identity provider's signing keys, each pinned to its algorithm.

A key's own ``alg`` pins it; a key without one accepts the configured algorithms its key type can
verify (so never ``none``, never HS* with an RSA or EC key). A token whose header names another
algorithm than its key allows is refused before any signature check. An unknown ``kid`` may
mean the provider rotated its keys, so it triggers a refetch, but at most one per interval:
tokens with made-up ``kid`` values must not turn the gateway into a JWKS fetch loop.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from services.errors import AuthenticationError

# The algorithm prefixes each key type can verify with.
_FAMILIES: dict[str, tuple[str, ...]] = {
    "RSA": ("RS", "PS"),
    "EC": ("ES",),
    "OKP": ("EdDSA",),
    "oct": ("HS",),
}


def key_algorithms(jwk: Mapping[str, Any], configured: Sequence[str]) -> tuple[str, ...]:
    """The algorithms a token signed with this key may name."""
    own = jwk.get("alg")
    candidates = [own] if isinstance(own, str) and own else list(configured)
    family = _FAMILIES.get(str(jwk.get("kty")), ())
    return tuple(a for a in candidates if a.lower() != "none" and a.startswith(family))


@dataclass(frozen=True, slots=True)
class PinnedKey:
    kid: str | None
    jwk: Mapping[str, Any]
    algorithms: tuple[str, ...]


def parse_jwks(data: Any, configured: Sequence[str]) -> list[PinnedKey]:
    """Usable keys of a JWKS document; keys PyJWT cannot load or no algorithm fits are skipped."""
    raw = data.get("keys") if isinstance(data, dict) else None
    keys: list[PinnedKey] = []
    for jwk in raw if isinstance(raw, list) else []:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        algorithms = key_algorithms(jwk, configured)
        try:
            jwt.PyJWK(jwk, algorithms[0] if algorithms else None)
        except jwt.PyJWTError:
            continue
        if algorithms:
            keys.append(PinnedKey(jwk.get("kid"), jwk, algorithms))
    return keys


def file_source(path: Path) -> Callable[[], Any]:
    return lambda: json.loads(path.read_text())


def url_source(url: str, timeout_s: float) -> Callable[[], Any]:
    """PyJWKClient's fetch (no redirects, a timeout), without its cache: ``JwksKeys`` caches."""
    client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=max(1, int(timeout_s)))
    return client.fetch_data


class JwksKeys:
    """The current key set, loaded on first use and refetched for an unknown ``kid`` at most
    once per ``refetch_interval_s`` (a failed fetch counts too)."""

    def __init__(
        self,
        load: Callable[[], Any],
        algorithms: Sequence[str],
        *,
        refetch_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._algorithms = tuple(algorithms)
        self._interval = refetch_interval_s
        self._clock = clock
        self._keys: list[PinnedKey] | None = None
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def _refetch(self, known: list[PinnedKey] | None) -> list[PinnedKey] | None:
        with self._lock:
            if self._keys is not known:  # another thread fetched meanwhile
                return self._keys
            now = self._clock()
            if self._fetched_at is not None and now - self._fetched_at < self._interval:
                return self._keys
            self._fetched_at = now
            try:
                data = self._load()
            except (jwt.PyJWKClientError, OSError, ValueError) as exc:
                if self._keys is None:
                    raise AuthenticationError(
                        "the identity provider's keys could not be fetched"
                    ) from exc
                return self._keys  # keep the last good set
            self._keys = parse_jwks(data, self._algorithms)
            return self._keys

    def key_for(self, header: Mapping[str, Any]) -> jwt.PyJWK:
        """The key that must verify a token with this header, bound to the header's ``alg``."""
        kid = header.get("kid")
        keys = self._keys if self._keys is not None else self._refetch(None)
        match = _match(keys or [], kid)
        if match is None and kid is not None:
            match = _match(self._refetch(keys) or [], kid)
        if match is None:
            raise AuthenticationError("the token's signing key is not in the JWKS")
        alg = header.get("alg")
        if alg not in match.algorithms:
            raise AuthenticationError("the token's alg is not the one pinned for its key")
        return jwt.PyJWK(dict(match.jwk), alg)


def _match(keys: list[PinnedKey], kid: Any) -> PinnedKey | None:
    if kid is None:  # only unambiguous with a single key
        return keys[0] if len(keys) == 1 else None
    return next((k for k in keys if k.kid == kid), None)
