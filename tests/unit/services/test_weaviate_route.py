"""The route reads take (``VersionedCollections._route``): past its time it is re-read in the
background while reads keep the last one, so a schema read that hangs (a cluster electing a new
RAFT leader) never holds up a search. Pure logic: the two Weaviate reads are stand-ins."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from services.errors import StoreUnavailableError
from services.records import IndexRecord
from services.weaviate_common import SCHEMA_VERSION
from services.weaviate_versions import VersionedCollections

pytestmark = pytest.mark.unit
MODEL, DIMS = "local/minilm", 384


class Reads(VersionedCollections):
    """Schema reads answered from ``records``/``target``; ``gate`` holds them while unset, and
    ``fail`` makes them raise as a timed-out Weaviate call does."""

    def __init__(self, ttl_s: float, wait_s: float = 0.2) -> None:
        client: Any = SimpleNamespace(connection=SimpleNamespace(collection="Chunks"))
        super().__init__(client, route_ttl_s=ttl_s, route_wait_s=wait_s)
        self._expect = (MODEL, DIMS)
        self.records = [IndexRecord("Chunks_1", MODEL, DIMS, SCHEMA_VERSION)]
        self.target = "Chunks_1"
        self.gate = threading.Event()
        self.gate.set()
        self.fail = False
        self.schema_reads = 0

    def index_records(self) -> list[IndexRecord]:
        self.gate.wait(10)
        self.schema_reads += 1
        if self.fail:
            raise StoreUnavailableError("weaviate timed out during list collections")
        return list(self.records)

    def alias_target(self) -> str | None:
        return self.target


def _wait_until(condition: Any) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_expired_route_is_read_again_before_use_when_the_read_answers_in_time() -> None:
    versions = Reads(ttl_s=0.05, wait_s=5.0)
    assert versions._route() == ("Chunks", None)
    versions.records.append(IndexRecord("Chunks_2", "local/other", 768, SCHEMA_VERSION))
    versions.target = "Chunks_2"  # a reindex repointed the alias at another model's collection
    time.sleep(0.06)
    assert versions._route()[0] == "Chunks_1"  # the very next read follows it


def test_an_expired_route_is_served_while_a_hanging_re_read_runs_in_the_background() -> None:
    versions = Reads(ttl_s=0.05, wait_s=0.2)
    assert versions._route() == ("Chunks", None)  # the first read is synchronous
    assert versions.schema_reads == 1
    versions.gate.clear()  # the next schema read hangs
    time.sleep(0.06)
    started = time.monotonic()
    for _ in range(20):
        assert versions._route() == ("Chunks", None)
    took = time.monotonic() - started
    assert 0.2 <= took < 0.6, "reads waited once for the hanging read, then kept the last route"
    assert versions.refreshing  # one re-read under way, not twenty
    # meanwhile a reindex repointed the alias at a collection of another model
    versions.records.append(IndexRecord("Chunks_2", "local/other", 768, SCHEMA_VERSION))
    versions.target = "Chunks_2"
    versions.gate.set()
    _wait_until(lambda: not versions.refreshing)
    assert versions.schema_reads == 2
    name, reason = versions._route()
    assert name == "Chunks_1" and reason and "holdfast reindex" in reason


def test_a_failed_re_read_keeps_the_last_route_and_is_tried_again() -> None:
    versions = Reads(ttl_s=0.05)
    versions._route()
    versions.fail = True
    time.sleep(0.06)
    assert versions._route() == ("Chunks", None)
    _wait_until(lambda: versions.schema_reads == 2 and not versions.refreshing)
    assert versions._route() == ("Chunks", None)  # still the old one, and another try
    _wait_until(lambda: versions.schema_reads == 3 and not versions.refreshing)


def test_fresh_reads_and_a_zero_ttl_read_synchronously() -> None:
    versions = Reads(ttl_s=0.0)
    versions._route()
    versions._route()
    assert versions.schema_reads == 2
    versions = Reads(ttl_s=60.0)
    versions._route()
    versions.fail = True
    with pytest.raises(StoreUnavailableError):
        versions._route(fresh=True)  # a write must not go by an old route


def test_a_reroute_waits_a_bounded_time_for_a_hanging_read() -> None:
    versions = Reads(ttl_s=60.0)
    versions._route()
    versions.gate.clear()
    started = time.monotonic()
    assert versions.reroute(wait_s=0.2)
    assert 0.2 <= time.monotonic() - started < 1.0
    assert versions._route() == ("Chunks", None)  # the last route, while the read hangs
    versions.target = "Chunks_9"
    versions.records.append(IndexRecord("Chunks_9", "local/other", 768, SCHEMA_VERSION))
    versions.gate.set()
    assert versions.reroute(wait_s=5.0)  # a read that answers: the moved alias is seen
    assert versions._route()[0] == "Chunks_1"
    versions._expect = ("", 0)
    assert not versions.reroute(wait_s=5.0)  # no model expected: the route is the alias
