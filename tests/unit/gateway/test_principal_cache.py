"""The verified-key cache: hits skip the store, misses and unknown keys never are remembered,
entries expire after the TTL, and a revoke through ``forget`` takes effect at once."""

from __future__ import annotations

import pytest

from gateway.security.keys import Principal
from gateway.security.principal_cache import PrincipalCache

pytestmark = pytest.mark.unit

ALICE = Principal("alice", ("hr",), frozenset({"query"}), key_id="k1")
BOB = Principal("bob", ("eng",), frozenset({"query"}), key_id="k2")


class Store:
    def __init__(self) -> None:
        self.keys = {"hf_alice": ALICE, "hf_bob": BOB}
        self.lookups = 0

    def authenticate(self, key: str) -> Principal | None:
        self.lookups += 1
        return self.keys.get(key)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_verified_key_is_looked_up_once_within_the_ttl() -> None:
    store, clock = Store(), Clock()
    cache = PrincipalCache(store.authenticate, ttl_s=5, clock=clock)
    assert cache.authenticate("hf_alice") == ALICE
    clock.now += 4.9
    assert cache.authenticate("hf_alice") == ALICE
    assert store.lookups == 1


def test_an_entry_expires_so_a_revoke_elsewhere_takes_effect_within_the_ttl() -> None:
    store, clock = Store(), Clock()
    cache = PrincipalCache(store.authenticate, ttl_s=5, clock=clock)
    cache.authenticate("hf_alice")
    del store.keys["hf_alice"]  # revoked by the CLI or another replica
    assert cache.authenticate("hf_alice") == ALICE  # still within the TTL
    clock.now += 5.0
    assert cache.authenticate("hf_alice") is None
    assert cache.authenticate("hf_alice") is None
    assert store.lookups == 3  # the revoked key is not remembered as unknown either


def test_unknown_keys_always_reach_the_store() -> None:
    store = Store()
    cache = PrincipalCache(store.authenticate, ttl_s=5, clock=Clock())
    for _ in range(3):
        assert cache.authenticate("hf_nobody") is None
    assert store.lookups == 3


def test_forget_drops_one_key_or_all() -> None:
    store = Store()
    cache = PrincipalCache(store.authenticate, ttl_s=5, clock=Clock())
    cache.authenticate("hf_alice")
    cache.authenticate("hf_bob")
    cache.forget("k1")
    cache.authenticate("hf_alice")
    cache.authenticate("hf_bob")
    assert store.lookups == 3
    cache.forget()
    cache.authenticate("hf_bob")
    assert store.lookups == 4


def test_ttl_zero_disables_the_cache_and_the_size_is_bounded() -> None:
    store = Store()
    off = PrincipalCache(store.authenticate, ttl_s=0, clock=Clock())
    off.authenticate("hf_alice")
    off.authenticate("hf_alice")
    assert store.lookups == 2
    small = PrincipalCache(store.authenticate, ttl_s=5, max_entries=1, clock=Clock())
    small.authenticate("hf_alice")
    small.authenticate("hf_bob")  # evicts alice
    small.authenticate("hf_alice")
    assert store.lookups == 5


def test_peek_never_looks_up_and_sees_only_live_entries() -> None:
    store, clock = Store(), Clock()
    cache = PrincipalCache(store.authenticate, ttl_s=5, clock=clock)
    assert cache.peek("hf_alice") is None
    assert store.lookups == 0
    cache.authenticate("hf_alice")
    assert cache.peek("hf_alice") == ALICE
    clock.now += 5.0
    assert cache.peek("hf_alice") is None
    assert store.lookups == 1
