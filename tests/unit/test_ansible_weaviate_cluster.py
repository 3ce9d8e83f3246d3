"""The playbook's Weaviate cluster (issue 18 item 4), run for real on this machine: site.yml with
an inventory of three Weaviate hosts (each a local connection with its own install root), limited
to the preflight and configure tasks of the weaviate and gateway roles. Each node's environment
file joins the others (gossip and Raft), and the gateway's holdfast.yaml names the replication
factor, the consistency levels and the other nodes to fail over to. A lone host renders as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
DB_URL = "postgresql://holdfast:secret@db.internal:5432/holdfast"
NODES = {"wv-a": "10.0.0.11", "wv-b": "10.0.0.12", "wv-c": "10.0.0.13"}


def _env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


def _play(base: Path, hosts: dict[str, str], **variables: Any) -> subprocess.CompletedProcess[str]:
    bundle = base / "holdfast-bundle-0.1.0"
    (bundle / "bin").mkdir(parents=True, exist_ok=True)
    (bundle / "bin" / "weaviate-server").write_text("")
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (bundle / "manifest.json").write_text(
        json.dumps({"holdfast_version": "0.1.0", "python_version": python, "artefacts": []})
    )
    for name in hosts:  # what the bundle role makes (skipped here)
        for folder in ("etc/holdfast", "var/lib/holdfast", "etc/systemd/system", "run/holdfast"):
            (base / name / folder).mkdir(parents=True, exist_ok=True)
        # a stand-in unit runner: the handlers' restarts start nothing here
        runner = base / name / "opt/holdfast/sbin/holdfast-unit-run"
        runner.parent.mkdir(parents=True, exist_ok=True)
        runner.write_text("#!/bin/sh\necho started\n")
        runner.chmod(0o755)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    per_host = {
        name: {
            **local,
            "holdfast_install_root": str(base / name),
            "holdfast_weaviate_host": address,
        }
        for name, address in hosts.items()
    }
    settings = {
        "holdfast_mode": "host",
        "holdfast_service_manager": "process",
        "holdfast_bundle_source_dir": str(bundle),
        "holdfast_bundle_dir": str(bundle),
        "holdfast_manage_user": False,
        "holdfast_service_user": "root",
        "holdfast_service_group": "root",
        "holdfast_environment": "development",
        "gateway_python": sys.executable,
        # several gateway hosts share state and rate limits (other roles' concern, tested elsewhere)
        **(
            {"holdfast_database_url": DB_URL, "holdfast_limits_per_host": True}
            if len(hosts) > 1
            else {"holdfast_worker_count": 0}
        ),
        **variables,
    }
    inventory = {
        "holdfast": {"hosts": per_host, "vars": settings},
        "holdfast_weaviate": {"hosts": {name: {} for name in hosts}},
    }
    path = base / "inventory.yml"
    path.write_text(json.dumps(inventory))
    return subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(path),
            "site.yml",
            "--tags",
            "preflight,configure",
            "--skip-tags",
            "bundle,llm,embeddings,kubernetes,database,workers",
        ],
        cwd=ANSIBLE,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.getuid() != 0:
        pytest.fail("the roles write root-owned files; run as root (CI does)")
    base = tmp_path_factory.mktemp("weaviate-cluster")
    done = _play(base, NODES)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return base


def test_each_node_joins_the_others_by_gossip_and_raft(cluster: Path) -> None:
    for name, address in NODES.items():
        env = _env(cluster / name / "etc/holdfast/weaviate.env")
        assert env["CLUSTER_HOSTNAME"] == name
        assert env["CLUSTER_ADVERTISE_ADDR"] == env["CLUSTER_BIND_ADDR"] == address
        others = [f"{a}:7946" for n, a in NODES.items() if n != name]
        assert env["CLUSTER_JOIN"] == ",".join(others)
        assert env["RAFT_JOIN"] == ",".join(f"{n}:8300" for n in NODES)
        assert env["RAFT_BOOTSTRAP_EXPECT"] == "3"
        assert env["REPLICATION_MINIMUM_FACTOR"] == "3"


def test_the_gateway_replicates_at_quorum_and_fails_over_to_the_other_nodes(
    cluster: Path,
) -> None:
    from gateway.settings import Settings

    for name, address in NODES.items():
        raw = yaml.safe_load((cluster / name / "etc/holdfast/holdfast.yaml").read_text())
        weaviate = raw["weaviate"]
        assert weaviate["host"] == address
        assert weaviate["replication_factor"] == 3
        assert (weaviate["write_consistency"], weaviate["read_consistency"]) == ("QUORUM",) * 2
        assert [n["host"] for n in weaviate["failover_nodes"]] == [
            a for a in NODES.values() if a != address
        ]
        assert Settings(**raw).weaviate.failover_nodes[0].http_port == 8079


def test_a_cluster_without_replication_or_on_loopback_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.fail("the roles write root-owned files; run as root (CI does)")
    single = _play(tmp_path / "factor", NODES, holdfast_weaviate_replication_factor=1)
    assert single.returncode != 0 and "holdfast_weaviate_replication_factor" in single.stdout
    loopback = _play(tmp_path / "loop", {"wv-a": "127.0.0.1", "wv-b": "10.0.0.12"})
    assert loopback.returncode != 0 and "non-loopback" in loopback.stdout


def test_one_host_renders_a_single_node_as_before(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.fail("the roles write root-owned files; run as root (CI does)")
    done = _play(tmp_path, {"rag-01": "127.0.0.1"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    env = _env(tmp_path / "rag-01/etc/holdfast/weaviate.env")
    assert env["CLUSTER_HOSTNAME"] == "holdfast" and env["RAFT_BOOTSTRAP_EXPECT"] == "1"
    assert "CLUSTER_JOIN" not in env and "REPLICATION_MINIMUM_FACTOR" not in env
    raw = yaml.safe_load((tmp_path / "rag-01/etc/holdfast/holdfast.yaml").read_text())
    assert set(raw["weaviate"]) == {"managed", "host", "http_port", "grpc_port"}
