"""Replication options of the collections Holdfast creates, the consistency levels of reads and
writes, and the bounded failover between nodes (a fake client stands in for weaviate-client)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from weaviate.classes.config import ConsistencyLevel

from services.errors import StoreUnavailableError
from services.weaviate_common import WeaviateClient, WeaviateConnection, WeaviateEndpoint

ONE_NODE = WeaviateConnection(
    host="10.0.0.1",
    http_port=8079,
    grpc_port=50051,
    api_key="k",
    collection="HoldfastChunk",
    query_timeout_s=1,
    insert_timeout_s=1,
    init_timeout_s=1,
    health_timeout_s=0.1,
)
CLUSTER = replace(
    ONE_NODE,
    replication_factor=3,
    read_consistency="ONE",
    failover=(WeaviateEndpoint("10.0.0.2", 8079, 50051), WeaviateEndpoint("10.0.0.3", 8079, 50051)),
)


class FakeHandle:
    def __init__(self, name: str, level: Any = None) -> None:
        self.name, self.level = name, level

    def with_consistency_level(self, level: Any) -> FakeHandle:
        return FakeHandle(self.name, level)


class FakeCollections:
    def use(self, name: str) -> FakeHandle:
        return FakeHandle(name)


class FakeClient:
    def __init__(self, node: WeaviateEndpoint) -> None:
        self.node, self.closed, self.collections = node, False, FakeCollections()

    def close(self) -> None:
        self.closed = True


class Scripted(WeaviateClient):
    """Nodes that are ready or not as the test says; no network."""

    def __init__(self, connection: WeaviateConnection, down: set[str]) -> None:
        super().__init__(connection)
        self.down = down

    def _connect(self, node: WeaviateEndpoint) -> Any:
        return FakeClient(node)

    def node_ready(self, node: WeaviateEndpoint) -> bool:
        return node.host not in self.down

    def _start_watch(self) -> None:  # the watcher is exercised by the cluster test
        return None


def test_one_node_creates_collections_and_handles_exactly_as_before() -> None:
    assert ONE_NODE.collection_options() == {}
    client = Scripted(ONE_NODE, down=set())
    assert client.reading("C").level is None and client.writing("C").level is None
    assert ONE_NODE.endpoints == (WeaviateEndpoint("10.0.0.1", 8079, 50051),)


def test_a_cluster_replicates_with_async_replication_and_time_based_deletes() -> None:
    options = replace(CLUSTER, shard_count=2).collection_options()
    replication = options["replication_config"]
    assert replication.factor == 3 and replication.asyncEnabled is True
    assert replication.deletionStrategy.value == "TimeBasedResolution"
    assert replication.asyncConfig.frequency == 5000
    assert options["sharding_config"].desiredCount == 2
    client = Scripted(CLUSTER, down=set())
    assert client.writing("C").level == ConsistencyLevel.QUORUM
    assert client.reading("C").level == ConsistencyLevel.ONE


def test_a_read_on_a_dead_node_is_repeated_once_on_the_next_ready_one() -> None:
    client = Scripted(CLUSTER, down={"10.0.0.1", "10.0.0.2"})
    seen: list[str] = []

    def search() -> str:
        node = client.live.node  # type: ignore[attr-defined]
        seen.append(node.host)
        if node.host in client.down:
            raise StoreUnavailableError("connection refused")
        return node.host

    assert client.failing_over(search) == "10.0.0.3"
    assert seen == ["10.0.0.1", "10.0.0.3"], "the dead failover node is skipped, not tried"
    assert (client.failovers, client.retries) == (1, 1)
    assert client.endpoint.host == "10.0.0.3"


def test_an_error_on_a_ready_node_is_the_querys_own_and_is_not_repeated() -> None:
    client = Scripted(CLUSTER, down=set())
    calls = 0

    def search() -> None:
        nonlocal calls
        calls += 1
        raise StoreUnavailableError("bad filter")

    with pytest.raises(StoreUnavailableError):
        client.failing_over(search)
    assert calls == 1 and client.failovers == 0


def test_without_failover_nodes_a_dead_node_fails_the_read() -> None:
    client = Scripted(ONE_NODE, down={"10.0.0.1"})

    def search() -> None:
        raise StoreUnavailableError("connection refused")

    with pytest.raises(StoreUnavailableError):
        client.failing_over(search)
    assert client.failovers == 0
