"""A real Weaviate cluster on loopback for integration tests: N weaviate-server processes (the
binary `make setup` builds), each with its own ports and data folder, joined by gossip and Raft.

    with running_weaviate_cluster(PORT_BASE + 70, tmp_path, nodes=3) as cluster:
        overrides = cluster.settings_overrides(replication_factor=3)  # Settings(weaviate=...)
        cluster.node(1).kill()      # SIGKILL, as a crash would
        cluster.node(1).start()     # same data folder; waits until it is ready again
        cluster.wait_members(3)     # until every node sees every other as HEALTHY

Node i listens on ``base_port + 6*i`` (REST) .. ``+5``: gRPC, gossip, data, Raft, Raft RPC (Raft
RPC must be Raft + 1 when the nodes share an address: Weaviate derives a peer's RPC port from its
Raft port in CLUSTER_IN_LOCALHOST mode). Each node is built by ``stack.weaviate_spec`` (the code
`holdfast up` uses), with the cluster's variables on top.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.local import stack
from gateway.local.processes import ProcessSpec, ProcessSupervisor
from gateway.settings import Settings

PORTS_PER_NODE = 6
API_KEY = "weaviate-cluster-test-key"


@dataclass
class ClusterNode:
    """One weaviate-server of the cluster."""

    index: int
    name: str
    host: str
    http_port: int
    grpc_port: int
    spec: ProcessSpec
    supervisor: ProcessSupervisor

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def pid(self) -> int | None:
        return self.supervisor.state(self.name).pid

    def running(self) -> bool:
        return self.supervisor.state(self.name).running

    def start(self) -> None:
        """Start it (again, on the same data folder) and wait until it is ready."""
        self.supervisor.start(self.spec)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, as a crashed host would leave it."""
        state = self.supervisor.state(self.name)
        if state.running and state.pid is not None:
            os.kill(state.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.supervisor.state(self.name).running and time.monotonic() < deadline:
                time.sleep(0.05)

    def stop(self) -> None:
        self.supervisor.stop(self.name)

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v1/.well-known/ready", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str, **params: Any) -> Any:
        """GET one of this node's REST endpoints (with the cluster's API key) as JSON."""
        response = httpx.get(
            f"{self.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=10.0,
        )
        response.raise_for_status()
        return response.json()

    def shard_counts(self, collection: str) -> dict[str, int]:
        """shard name -> objects this node holds of ``collection`` (its own copy, as the node
        reports it in ``/v1/nodes?output=verbose``)."""
        found = self.get(f"/v1/nodes/{collection}", output="verbose")
        for node in found.get("nodes", []):
            if node.get("name") == self.name:
                return {
                    str(s["name"]): int(s.get("objectCount") or 0)
                    for s in node.get("shards") or []
                    if s.get("class") == collection
                }
        return {}


@dataclass
class WeaviateCluster:
    nodes: list[ClusterNode]

    def node(self, index: int) -> ClusterNode:
        return self.nodes[index]

    def settings_overrides(self, *, entry: int = 0, **extra: Any) -> dict[str, Any]:
        """The ``weaviate={...}`` of a Settings that talks to node ``entry`` and fails over to
        the others; ``extra`` adds or replaces keys (e.g. ``replication_factor=3``)."""
        first = self.nodes[entry]
        others = [n for n in self.nodes if n is not first]
        return {
            "managed": False,
            "host": first.host,
            "http_port": first.http_port,
            "grpc_port": first.grpc_port,
            "api_key": API_KEY,
            "failover_nodes": [
                {"host": n.host, "http_port": n.http_port, "grpc_port": n.grpc_port} for n in others
            ],
            **extra,
        }

    def members(self, via: int | None = None) -> dict[str, str]:
        """node name -> status (HEALTHY, UNHEALTHY, ...) as one ready node sees the cluster."""
        asked = [self.nodes[via]] if via is not None else [n for n in self.nodes if n.ready()]
        for node in asked:
            try:
                found = node.get("/v1/nodes")
            except httpx.HTTPError:
                continue
            return {str(n["name"]): str(n.get("status")) for n in found.get("nodes", [])}
        return {}

    def wait_members(self, healthy: int, timeout_s: float = 120.0) -> float:
        """Wait until some node reports ``healthy`` HEALTHY members; returns seconds waited."""
        started = time.monotonic()
        seen: dict[str, str] = {}
        while time.monotonic() - started < timeout_s:
            seen = self.members()
            if sum(1 for status in seen.values() if status == "HEALTHY") >= healthy:
                return time.monotonic() - started
            time.sleep(0.5)
        raise TimeoutError(f"cluster did not reach {healthy} healthy nodes: {seen}")


def _node_settings(home: Path, base_port: int) -> Settings:
    return Settings(
        home=home,
        weaviate={
            "http_port": base_port,
            "grpc_port": base_port + 1,
            "gossip_port": base_port + 2,
            "data_port": base_port + 3,
            "raft_port": base_port + 4,
            "raft_rpc_port": base_port + 5,
            "api_key": API_KEY,
            "startup_timeout_s": 180,
        },
    )


@contextmanager
def running_weaviate_cluster(
    base_port: int, root: Path, *, nodes: int = 3, env: dict[str, str] | None = None
) -> Iterator[WeaviateCluster]:
    """Start ``nodes`` weaviate-servers on loopback (ports from ``base_port``, data under
    ``root``), wait until each is ready and every one sees all as HEALTHY; stop them after.
    ``env`` adds server variables to every node (e.g. ASYNC_REPLICATION_FREQUENCY)."""
    names = [f"node{i}" for i in range(nodes)]
    raft_join = ",".join(
        f"{name}:{base_port + PORTS_PER_NODE * i + 4}" for i, name in enumerate(names)
    )
    gossip = [f"127.0.0.1:{base_port + PORTS_PER_NODE * i + 2}" for i in range(nodes)]
    members: list[ClusterNode] = []
    for i, name in enumerate(names):
        home = root / name
        settings = _node_settings(home, base_port + PORTS_PER_NODE * i)
        for folder in (settings.run_dir, settings.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        spec = stack.weaviate_spec(settings)
        cluster_env = {
            **spec.env,
            "CLUSTER_HOSTNAME": name,
            "CLUSTER_IN_LOCALHOST": "true",
            "RAFT_JOIN": raft_join,
            "RAFT_BOOTSTRAP_EXPECT": str(nodes),
            # every other node: any one that answers will do, also when this one restarts
            "CLUSTER_JOIN": ",".join(g for j, g in enumerate(gossip) if j != i),
            **(env or {}),
        }
        members.append(
            ClusterNode(
                index=i,
                name=name,
                host=settings.weaviate.host,
                http_port=settings.weaviate.http_port,
                grpc_port=settings.weaviate.grpc_port,
                spec=dataclasses.replace(spec, name=name, env=cluster_env),
                supervisor=ProcessSupervisor(settings.run_dir, settings.logs_dir),
            )
        )
    cluster = WeaviateCluster(members)
    try:
        # a node is ready only once Raft has a leader, which needs BOOTSTRAP_EXPECT nodes up:
        # start them side by side, each waiting for its own readiness
        with ThreadPoolExecutor(nodes) as pool:
            list(pool.map(lambda node: node.start(), members))
        cluster.wait_members(nodes)
        yield cluster
    finally:
        for node in reversed(members):
            node.stop()
