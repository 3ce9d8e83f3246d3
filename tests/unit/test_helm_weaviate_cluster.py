"""The chart's Weaviate cluster reaches the gateway's config: the collections it creates get the
cluster's replication factor, consistency levels pass through, and a multi-node Weaviate without
replication is refused (a node lost would take its shards with it)."""

from __future__ import annotations

from typing import Any

from tests.unit.test_helm_chart import (
    FULLNAME,
    config_file,
    containers,
    env_of,
    find,
    render,
    render_failure,
    value_set_args,
)


def _render(*sets: str) -> list[dict[str, Any]]:
    return render(*value_set_args("cpu-minimal"), *(a for s in sets for a in ("--set", s)))


def _failure(*sets: str) -> str:
    return render_failure(*value_set_args("cpu-minimal"), *(a for s in sets for a in ("--set", s)))


def test_one_node_renders_no_replication_into_the_gateway_config() -> None:
    config = config_file(_render(), "config", "holdfast.yaml")
    assert "replication_factor" not in config["weaviate"]
    assert config["weaviate"]["write_consistency"] == "QUORUM"


def test_three_nodes_replicate_every_collection_the_gateway_creates() -> None:
    objects = _render(
        "weaviate.replicas=3",
        "weaviate.replicationFactor=3",
        "config.weaviate.read_consistency=ONE",
    )
    config = config_file(objects, "config", "holdfast.yaml")
    assert config["weaviate"]["replication_factor"] == 3
    assert config["weaviate"]["read_consistency"] == "ONE"
    sts = find(objects, "StatefulSet", f"{FULLNAME}-weaviate")
    env = env_of(next(containers(sts)))
    assert env["RAFT_BOOTSTRAP_EXPECT"]["value"] == "3"
    assert env["RAFT_JOIN"]["value"] == ",".join(f"{FULLNAME}-weaviate-{i}" for i in range(3))
    assert env["CLUSTER_JOIN"]["value"].startswith(f"{FULLNAME}-weaviate-headless.")
    headless = find(objects, "Service", f"{FULLNAME}-weaviate-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert {p["name"] for p in headless["spec"]["ports"]} >= {"gossip", "data", "raft", "raft-rpc"}
    from gateway.settings import Settings

    assert Settings(**config).weaviate.replication_factor == 3


def test_several_nodes_without_replication_are_refused() -> None:
    assert "replicationFactor" in _failure("weaviate.replicas=3")


def test_a_misspelt_consistency_level_is_refused_by_the_schema() -> None:
    assert "write_consistency" in _failure("config.weaviate.write_consistency=MOST")
