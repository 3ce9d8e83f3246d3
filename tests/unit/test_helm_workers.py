"""The chart's ingestion workers (issue 18 item 2, issue 17 item 5): the `ingestion` component runs
`holdfast worker` from the gateway's image with the gateway's configuration and secrets, as many
pods as `ingestion.replicas`; the gateways then only enqueue (`ingestion.run_in_gateway: false`);
and the chart refuses workers, like several gateway pods, without the shared PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import typer

from tests.unit.test_helm_chart import (
    FULLNAME,
    RENDER_KUBE_VERSION,
    config_file,
    containers,
    env_of,
    find,
    pod_spec,
    render,
    render_failure,
    value_set_args,
)

pytestmark = pytest.mark.unit

WORKER = f"{FULLNAME}-ingestion"
GATEWAY = f"{FULLNAME}-gateway"
WORKERS_ON = ["--set", "ingestion.enabled=true"]
SINGLE_GATEWAY = ["--set", "gateway.autoscaling.enabled=false", "--set", "gateway.replicas=1"]
SINGLE_GATEWAY += ["--set", "gateway.podDisruptionBudget.enabled=false"]
NO_DATABASE = ["--set", "database.existingSecret=", "--set", "database.url="]


def worker_and_gateway(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    worker = next(containers(find(objects, "Deployment", WORKER)))
    gateway = next(containers(find(objects, "Deployment", GATEWAY)))
    return worker, gateway


def test_the_worker_command_exists_in_the_cli_the_image_carries() -> None:
    """The chart never again runs a command the gateway image lacks (issue 17 item 5)."""
    from gateway.cli.main import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert "worker" in commands
    objects = render(*WORKERS_ON)
    worker, _ = worker_and_gateway(objects)
    assert worker["command"] == ["holdfast"]
    assert worker["args"][0] == "worker"
    options = {p.name for p in commands["worker"].params}
    flags = [a.removeprefix("--").replace("-", "_") for a in worker["args"][1:] if a[:2] == "--"]
    assert flags and set(flags) <= options


def test_workers_serve_metrics_that_a_pod_monitor_scrapes_through_the_network_policy() -> None:
    objects = render(*WORKERS_ON, "--set", "serviceMonitor.enabled=true")
    worker, _ = worker_and_gateway(objects)
    assert worker["args"] == ["worker", "--metrics-port", "9090", "--metrics-host", "0.0.0.0"]
    assert worker["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    monitor = find(objects, "PodMonitor", WORKER)
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    deployment = find(objects, "Deployment", WORKER)
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    policy = find(objects, "NetworkPolicy", WORKER)
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9090}]}]
    prometheus = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    narrowed = render(
        *WORKERS_ON, "--set-json", f"networkPolicy.metricsIngressFrom={json.dumps(prometheus)}"
    )
    assert find(narrowed, "NetworkPolicy", WORKER)["spec"]["ingress"][0]["from"] == prometheus


def test_metrics_port_zero_serves_and_opens_nothing() -> None:
    objects = render(
        *WORKERS_ON, "--set", "serviceMonitor.enabled=true", "--set", "ingestion.metricsPort=0"
    )
    worker, _ = worker_and_gateway(objects)
    assert worker["args"] == ["worker"] and "ports" not in worker
    assert not [o for o in objects if o["kind"] == "PodMonitor"]
    assert find(objects, "NetworkPolicy", WORKER)["spec"]["ingress"] == []


def test_workers_run_from_the_gateways_image_config_and_secrets() -> None:
    objects = render(*WORKERS_ON)
    deployment = find(objects, "Deployment", WORKER)
    assert deployment["spec"]["replicas"] == 2  # the default worker count when enabled
    worker, gateway = worker_and_gateway(objects)
    assert worker["image"] == gateway["image"]
    worker_env, gateway_env = env_of(worker), env_of(gateway)
    for shared in (
        "HOLDFAST_CONFIG",
        "HOLDFAST_HOME",
        "HOLDFAST_DATABASE__URL",
        "HOLDFAST_INGESTION__ID_KEY",  # every gateway and worker of one index shares the id key
        "HOLDFAST_WEAVIATE__API_KEY",
        "HF_HUB_OFFLINE",
    ):
        assert worker_env[shared] == gateway_env[shared], shared
    assert worker_env["HOLDFAST_DATABASE__URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "holdfast-database",
        "key": "url",
    }
    assert "HOLDFAST_BOOTSTRAP_ADMIN_KEY" not in worker_env  # workers create no keys
    volumes = {v["name"]: v for v in pod_spec(find(objects, "Deployment", WORKER))["volumes"]}
    gateway_volumes = {
        v["name"]: v for v in pod_spec(find(objects, "Deployment", GATEWAY))["volumes"]
    }
    assert volumes["config"] == gateway_volumes["config"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations["checksum/config"] == pod_spec_annotations(objects, GATEWAY)["checksum/config"]
    )
    kubernetes_validate.validate(deployment, RENDER_KUBE_VERSION, strict=True)


def pod_spec_annotations(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    annotations: dict[str, str] = find(objects, "Deployment", name)["spec"]["template"]["metadata"][
        "annotations"
    ]
    return annotations


def test_a_worker_has_no_service_no_probe_and_may_finish_its_batch() -> None:
    """Nothing routes to a worker (its one port is metrics) and nothing restarts it: a stuck
    job is caught by its lease and bounded attempts. SIGTERM lets the batch in hand finish
    within the grace period."""
    objects = render(*WORKERS_ON)
    worker, _ = worker_and_gateway(objects)
    assert [p["name"] for p in worker["ports"]] == ["metrics"]
    assert not {"livenessProbe", "readinessProbe", "startupProbe"} & worker.keys()
    assert pod_spec(find(objects, "Deployment", WORKER))["terminationGracePeriodSeconds"] == 360
    assert not [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == WORKER]
    # a probe an operator adds is rendered as given
    probe = '{"exec": {"command": ["holdfast", "--help"]}, "periodSeconds": 30}'
    objects = render(*WORKERS_ON, "--set-json", f"ingestion.livenessProbe={probe}")
    worker, _ = worker_and_gateway(objects)
    assert worker["livenessProbe"]["exec"]["command"] == ["holdfast", "--help"]


@pytest.mark.parametrize("count", [1, 5])
def test_ingestion_replicas_is_the_worker_count(count: int) -> None:
    objects = render(*WORKERS_ON, "--set", f"ingestion.replicas={count}")
    assert find(objects, "Deployment", WORKER)["spec"]["replicas"] == count


def test_the_gateway_only_enqueues_when_workers_run() -> None:
    from gateway.settings import Settings

    objects = render(*WORKERS_ON, "--set", "config.ingestion.max_file_mb=20")
    config = config_file(objects, "config", "holdfast.yaml")
    assert config["ingestion"]["run_in_gateway"] is False
    assert config["ingestion"]["max_file_mb"] == 20  # the operator's own ingestion keys stay
    assert Settings(**config).ingestion.run_in_gateway is False
    # an operator cannot switch the gateway's worker thread back on beside the workers
    objects = render(*WORKERS_ON, "--set", "config.ingestion.run_in_gateway=true")
    assert config_file(objects, "config", "holdfast.yaml")["ingestion"]["run_in_gateway"] is False
    # without workers the gateway keeps running its jobs (the setting's default, true)
    config = config_file(render(), "config", "holdfast.yaml")
    assert "run_in_gateway" not in config.get("ingestion", {})
    assert Settings(**config).ingestion.run_in_gateway is True


def test_workers_need_the_shared_database() -> None:
    message = render_failure(*WORKERS_ON, *SINGLE_GATEWAY, *NO_DATABASE)
    assert "ingestion workers" in message and "database.existingSecret" in message
    # the same single gateway without workers needs none
    render(*SINGLE_GATEWAY, *NO_DATABASE)
    # a plain URL (development) is a database too
    url = "postgresql://holdfast:dev@postgres:5432/holdfast"
    objects = render(*WORKERS_ON, *SINGLE_GATEWAY, *NO_DATABASE, "--set", f"database.url={url}")
    worker, _ = worker_and_gateway(objects)
    assert env_of(worker)["HOLDFAST_DATABASE__URL"] == {
        "name": "HOLDFAST_DATABASE__URL",
        "value": url,
    }


def test_several_gateways_still_need_the_database_with_or_without_workers() -> None:
    for extra in ([], WORKERS_ON):
        message = render_failure(*extra, *NO_DATABASE)
        assert "more than one gateway replica" in message


def test_enabled_workers_must_be_at_least_one() -> None:
    assert "ingestion.replicas" in render_failure(*WORKERS_ON, "--set", "ingestion.replicas=0")


def test_workers_reach_weaviate_embeddings_and_their_extra_egress_only() -> None:
    database = (
        '[{"to": [{"podSelector": {"matchLabels": {"app": "postgres"}}}],'
        ' "ports": [{"protocol": "TCP", "port": 5432}]}]'
    )
    objects = render(*WORKERS_ON, "--set-json", f"networkPolicy.ingestionExtraEgress={database}")
    selector = find(objects, "Deployment", WORKER)["spec"]["selector"]
    policy = find(objects, "NetworkPolicy", WORKER)
    assert policy["spec"]["podSelector"] == selector
    assert policy["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 9090}]}]  # metrics
    egress = policy["spec"]["egress"]
    assert egress[-1]["ports"] == [{"protocol": "TCP", "port": 5432}]
    for target in ("weaviate", "embeddings"):
        ingress = find(objects, "NetworkPolicy", f"{FULLNAME}-{target}")["spec"]["ingress"][0]
        assert {"podSelector": selector} in ingress["from"], target
    llm = find(objects, "NetworkPolicy", f"{FULLNAME}-llm")["spec"]["ingress"][0]
    assert {"podSelector": selector} not in llm["from"]


def test_the_production_example_runs_four_workers(gpu_objects: list[dict[str, Any]]) -> None:
    deployment = find(gpu_objects, "Deployment", WORKER)
    assert deployment["spec"]["replicas"] == 4
    assert (
        config_file(gpu_objects, "config", "holdfast.yaml")["ingestion"]["run_in_gateway"] is False
    )
    spec = pod_spec(deployment)
    assert spec["imagePullSecrets"] == [{"name": "customer-registry"}]
    assert spec["automountServiceAccountToken"] is False
    # the JWKS the gateway's holdfast.yaml names is there for the worker too
    config = next(v for v in spec["volumes"] if v["name"] == "config")
    assert {"key": "jwks.json", "path": "jwks.json"} in [
        item
        for s in config["projected"]["sources"]
        for item in s.get("configMap", {}).get("items", [])
    ]


@pytest.fixture(scope="module")
def gpu_objects() -> list[dict[str, Any]]:
    return render(*value_set_args("gpu-production"))


def test_gateway_and_worker_pods_bring_the_schema_to_head_before_they_start() -> None:
    """Both refuse an older schema; `holdfast db upgrade` is idempotent and serialised by an
    advisory lock, so every pod may run it."""
    from gateway.cli.main import app

    db = typer.main.get_command(app).commands["db"]  # type: ignore[attr-defined]
    assert "upgrade" in db.commands  # type: ignore[attr-defined]
    objects = render(*WORKERS_ON)
    for name in (GATEWAY, WORKER):
        spec = pod_spec(find(objects, "Deployment", name))
        # the model store is filled first (test_helm_images_and_models.py), then the schema
        populate, init = spec["initContainers"]
        assert populate["name"] == "models-populate"
        main = spec["containers"][0]
        assert init["command"] == ["holdfast", "db", "upgrade"]
        assert init["image"] == main["image"]
        assert env_of(init)["HOLDFAST_DATABASE__URL"] == env_of(main)["HOLDFAST_DATABASE__URL"]
        assert env_of(init)["HOLDFAST_CONFIG"] == env_of(main)["HOLDFAST_CONFIG"]
        assert init["securityContext"]["readOnlyRootFilesystem"] is True
        assert init["resources"]["limits"]["memory"] == "512Mi"
    no_populate = ["--set", "models.populate=false"]
    # no database (one gateway, no workers): nothing to migrate
    objects = render(*SINGLE_GATEWAY, *NO_DATABASE, *no_populate)
    assert "initContainers" not in pod_spec(find(objects, "Deployment", GATEWAY))
    # an operator who migrates by hand turns it off
    objects = render(*WORKERS_ON, "--set", "database.migrate=false", *no_populate)
    for name in (GATEWAY, WORKER):
        assert "initContainers" not in pod_spec(find(objects, "Deployment", name))
