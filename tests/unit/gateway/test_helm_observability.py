"""The chart's optional OpenTelemetry Collector and Grafana dashboard: valid objects, the
gateway's traces wired to the Collector, the network policies open exactly that flow."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml


def _chart_helpers() -> Any:
    """The render helpers of tests/unit/test_helm_chart.py (not a package: load by path)."""
    path = Path(__file__).resolve().parents[1] / "test_helm_chart.py"
    spec = importlib.util.spec_from_file_location("holdfast_helm_chart_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_h = _chart_helpers()
CHART, FULLNAME, KUBE_VERSIONS = _h.CHART, _h.FULLNAME, _h.KUBE_VERSIONS
config_file, find, pod_spec, render, value_set_args = (
    _h.config_file,
    _h.find,
    _h.pod_spec,
    _h.render,
    _h.value_set_args,
)

pytestmark = pytest.mark.unit
COLLECTOR = f"{FULLNAME}-otel-collector"
ON = ["--set", "otelCollector.enabled=true", "--set", "grafanaDashboard.enabled=true"]


@pytest.fixture(scope="module")
def with_collector() -> list[dict[str, Any]]:
    return render(*value_set_args("gpu-production"), *ON)


def test_collector_and_dashboard_are_off_by_default() -> None:
    names = {o["metadata"]["name"] for o in render(*value_set_args("gpu-production"))}
    assert COLLECTOR not in names and f"{FULLNAME}-dashboard" not in names


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_collector_objects_validate(kube_version: str) -> None:
    objects = render(*value_set_args("gpu-production"), *ON, kube_version=kube_version)
    names = {o["metadata"]["name"] for o in objects}
    assert COLLECTOR in names and f"{FULLNAME}-dashboard" in names  # the objects under test
    for obj in objects:
        kubernetes_validate.validate(obj, kube_version, strict=True)


def test_gateway_sends_traces_to_the_collector(with_collector: list[dict[str, Any]]) -> None:
    telemetry = config_file(with_collector, "config", "holdfast.yaml")["telemetry"]
    assert telemetry["exporter"] == "otlp"
    assert telemetry["otlp_endpoint"] == f"http://{COLLECTOR}:4318/v1/traces"
    service = find(with_collector, "Service", COLLECTOR)
    assert [p["port"] for p in service["spec"]["ports"]] == [4318]
    collector_config = yaml.safe_load(
        find(with_collector, "ConfigMap", COLLECTOR)["data"]["config.yaml"]
    )
    assert collector_config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]
    container = pod_spec(find(with_collector, "Deployment", COLLECTOR))["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_only_the_gateway_may_reach_the_collector(with_collector: list[dict[str, Any]]) -> None:
    policy = find(with_collector, "NetworkPolicy", COLLECTOR)
    (rule,) = policy["spec"]["ingress"]
    labels = rule["from"][0]["podSelector"]["matchLabels"]
    assert labels["app.kubernetes.io/component"] == "gateway"
    assert policy["spec"]["egress"] == []
    gateway = find(with_collector, "NetworkPolicy", f"{FULLNAME}-gateway")
    ports = [p["port"] for rule in gateway["spec"]["egress"] for p in rule.get("ports", [])]
    assert 4318 in ports


def test_dashboard_ships_and_queries_only_gateway_metrics(
    with_collector: list[dict[str, Any]],
) -> None:
    shipped = find(with_collector, "ConfigMap", f"{FULLNAME}-dashboard")
    assert shipped["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(shipped["data"]["holdfast.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "holdfast.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    for metric in (
        "holdfast_http_request_duration_seconds_bucket",
        "holdfast_query_stage_duration_seconds_bucket",
        "holdfast_llm_tokens_total",
        "holdfast_refusals_total",
        "holdfast_redactions_total",
        "holdfast_ingest_chunks_written_total",
        "holdfast_ingest_jobs",
        "holdfast_upstream_errors_total",
        "holdfast_query_embedding_runs_total",
        "holdfast_query_embeddings_total",
        "holdfast_hit_vectors_kept_total",
        "holdfast_hit_vectors_fetched_total",
    ):
        assert any(metric in e for e in exprs), metric
