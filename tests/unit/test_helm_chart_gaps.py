"""Chart gaps of issue 17 (items 5 and 7): no component runs a command the image lacks, slow
starters have startup probes, Weaviate spreads over hosts, backs up and sizes Go's heap from its
limit, holdfast.yaml's auth/limits/ingestion pass the schema, JWKS mounts reach the gateway's
config, ServiceMonitor, the Collector's egress to its endpoint, per-component pod knobs, and a
shared database for more than one gateway pod."""

from __future__ import annotations

import importlib.util
import json
import sys
from functools import cache
from typing import Any

import kubernetes_validate
import pytest

from tests.unit.test_helm_chart import (
    FULLNAME,
    NAMESPACE,
    RENDER_KUBE_VERSION,
    REPO,
    containers,
    env_of,
    find,
    pod_spec,
    render,
    render_failure,
    value_set_args,
)

pytestmark = pytest.mark.unit

WEAVIATE = f"{FULLNAME}-weaviate"
SINGLE_GATEWAY = ["--set", "gateway.autoscaling.enabled=false", "--set", "gateway.replicas=1"]
SINGLE_GATEWAY += ["--set", "gateway.podDisruptionBudget.enabled=false"]


def sets(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


def weaviate_env(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return env_of(next(containers(find(objects, "StatefulSet", WEAVIATE))))


@cache
def config_schema_tool() -> Any:
    spec = importlib.util.spec_from_file_location(
        "config_schema", REPO / "helm" / "tools" / "config_schema.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --- item 5: the ingestion worker -------------------------------------------------------------


@pytest.mark.parametrize("value_set", ["default", "cpu-minimal"])
def test_value_sets_without_workers_deploy_none(value_set: str) -> None:
    """The worker itself (`holdfast worker`, issue 18) is tested in test_helm_workers.py."""
    objects = render(*value_set_args(value_set))
    assert not [o for o in objects if o["metadata"]["name"] == f"{FULLNAME}-ingestion"]
    for obj in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
        for container in containers(obj):
            assert "worker" not in container.get("args", []), obj["metadata"]["name"]


# --- item 7: probes, placement, Weaviate ------------------------------------------------------


def test_every_slow_starter_has_a_startup_probe() -> None:
    objects = render(*value_set_args("gpu-production"))
    for kind, component in (
        ("StatefulSet", "weaviate"),
        ("Deployment", "gateway"),
        ("Deployment", "embeddings"),
        ("Deployment", "llm"),
    ):
        container = next(containers(find(objects, kind, f"{FULLNAME}-{component}")))
        assert container.get("startupProbe"), component
    weaviate = next(containers(find(objects, "StatefulSet", WEAVIATE)))
    assert weaviate["startupProbe"]["httpGet"]["path"] == "/v1/.well-known/live"
    assert "initialDelaySeconds" not in weaviate["livenessProbe"]


def test_weaviate_nodes_must_sit_on_different_hosts_when_there_are_several() -> None:
    three = pod_spec(find(render(*value_set_args("gpu-production")), "StatefulSet", WEAVIATE))
    (term,) = three["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "weaviate"
    one = pod_spec(find(render(), "StatefulSet", WEAVIATE))
    assert "affinity" not in one
    own = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    mine = render(
        *value_set_args("gpu-production"), "--set-json", f"weaviate.affinity={json.dumps(own)}"
    )
    assert pod_spec(find(mine, "StatefulSet", WEAVIATE))["affinity"] == own


@pytest.mark.parametrize(
    ("memory", "ratio", "expected"),
    [("8Gi", "0.85", "6963MiB"), ("4096Mi", "0.5", "2048MiB"), ("8G", "0.9", "6866MiB")],
)
def test_gomemlimit_is_a_share_of_the_memory_limit(memory: str, ratio: str, expected: str) -> None:
    objects = render(
        *sets(f"weaviate.resources.limits.memory={memory}"),
        *("--set-json", f"weaviate.goMemLimitRatio={ratio}"),  # --set keeps floats as strings
    )
    assert weaviate_env(objects)["GOMEMLIMIT"]["value"] == expected


def test_gomemlimit_can_be_left_unset_and_odd_quantities_are_refused() -> None:
    assert "GOMEMLIMIT" not in weaviate_env(render(*sets("weaviate.goMemLimitRatio=0")))
    assert "limits.memory" in render_failure("--set", "weaviate.resources.limits.memory=8Xi")


def test_weaviate_backs_up_to_a_volume_only_when_asked() -> None:
    assert weaviate_env(render())["ENABLE_MODULES"]["value"] == ""
    objects = render(*sets("weaviate.backup.enabled=true"))
    env = weaviate_env(objects)
    assert env["ENABLE_MODULES"]["value"] == "backup-filesystem"
    assert env["BACKUP_FILESYSTEM_PATH"]["value"] == "/var/lib/weaviate-backups"
    statefulset = find(objects, "StatefulSet", WEAVIATE)
    claims = {c["metadata"]["name"]: c for c in statefulset["spec"]["volumeClaimTemplates"]}
    assert claims["backups"]["spec"]["resources"]["requests"]["storage"] == "32Gi"
    mounts = {m["name"]: m["mountPath"] for m in next(containers(statefulset))["volumeMounts"]}
    assert mounts["backups"] == "/var/lib/weaviate-backups"


def test_a_backup_of_several_weaviate_nodes_needs_one_shared_claim() -> None:
    three = [*value_set_args("gpu-production"), *sets("weaviate.backup.enabled=true")]
    assert "weaviate.backup.existingClaim" in render_failure(*three)
    objects = render(*three, "--set", "weaviate.backup.existingClaim=weaviate-backups")
    statefulset = find(objects, "StatefulSet", WEAVIATE)
    volumes = {v["name"]: v for v in pod_spec(statefulset)["volumes"]}
    assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == "weaviate-backups"
    assert [c["metadata"]["name"] for c in statefulset["spec"]["volumeClaimTemplates"]] == ["data"]


# --- item 7: holdfast.yaml sections and the JWKS ----------------------------------------------


def test_the_schema_carries_the_gateways_own_auth_limits_and_ingestion_fields() -> None:
    tool = config_schema_tool()
    assert tool.main(["--check"]) == 0, "run: python helm/tools/config_schema.py --write"
    from gateway.settings import AuthSettings, IngestionSettings, JwtSettings, LimitsSettings

    sections = tool.generated()
    secrets = {"storage_url", "id_key"}
    assert set(sections["limits"]["properties"]) == set(LimitsSettings.model_fields) - secrets
    assert set(sections["ingestion"]["properties"]) == set(IngestionSettings.model_fields) - secrets
    assert set(sections["auth"]["properties"]) == set(AuthSettings.model_fields)
    assert set(sections["auth"]["properties"]["jwt"]["properties"]) == set(JwtSettings.model_fields)


def test_auth_limits_and_ingestion_render_into_holdfast_yaml() -> None:
    from tests.unit.test_helm_chart import config_file

    objects = render(
        *sets(
            "config.auth.jwt.enabled=true",
            "config.auth.jwt.issuer=https://sso.example.internal",
            "config.auth.jwt.audience=holdfast",
            "config.auth.jwt.jwks_url=https://sso.example.internal/certs",
            "config.limits.rate_per_minute=60",
            "config.ingestion.max_file_mb=20",
        )
    )
    config = config_file(objects, "config", "holdfast.yaml")
    assert config["auth"]["jwt"]["issuer"] == "https://sso.example.internal"
    assert config["limits"]["rate_per_minute"] == 60
    assert config["ingestion"]["max_file_mb"] == 20
    assert "additional properties 'bogus'" in render_failure("--set", "config.auth.jwt.bogus=1")
    # a secret never goes through values: the schema has no place for it
    assert "storage_url" in render_failure("--set", "config.limits.storage_url=redis://x")


def test_mounting_a_jwks_points_the_gateway_at_it() -> None:
    from gateway.settings import Settings
    from tests.unit.test_helm_chart import config_file

    objects = render(*value_set_args("gpu-production"))
    config = config_file(objects, "config", "holdfast.yaml")
    assert config["auth"]["jwt"]["jwks_file"] == "/etc/holdfast/jwks.json"
    assert config["auth"]["jwt"]["issuer"]  # the example's own fields are kept
    assert Settings(**config).auth.jwt.enabled
    projected = pod_spec(find(objects, "Deployment", f"{FULLNAME}-gateway"))["volumes"][0]
    paths = [
        i["path"]
        for s in projected["projected"]["sources"]
        for i in s.get("configMap", {}).get("items", [])
    ]
    assert "jwks.json" in paths
    plain = config_file(render(), "config", "holdfast.yaml")
    assert "jwks_file" not in plain.get("auth", {}).get("jwt", {})


# --- item 7: ServiceMonitor, Collector egress, per-component knobs ----------------------------


def test_the_service_monitor_is_optional_and_scrapes_the_gateway_metrics() -> None:
    assert not [o for o in render() if o["kind"] == "ServiceMonitor"]
    objects = render(*sets("serviceMonitor.enabled=true", "serviceMonitor.labels.release=prom"))
    monitor = find(objects, "ServiceMonitor", f"{FULLNAME}-gateway")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    service = find(objects, "Service", f"{FULLNAME}-gateway")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert "http" in [p["name"] for p in service["spec"]["ports"]]


def collector_egress(endpoint: str, *extra: str) -> list[dict[str, Any]]:
    objects = render(
        *sets("otelCollector.enabled=true", f"otelCollector.exportEndpoint={endpoint}"), *extra
    )
    egress: list[dict[str, Any]] = find(objects, "NetworkPolicy", f"{FULLNAME}-otel-collector")[
        "spec"
    ]["egress"]
    return egress


@pytest.mark.parametrize(
    ("endpoint", "peer", "port"),
    [
        (
            "http://tempo.observability.svc:4318",
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "observability"}
                }
            },
            4318,
        ),
        ("https://jaeger.tracing.svc.cluster.local/v1/traces", None, 443),
        ("http://tempo:4318", {"podSelector": {}}, 4318),
        (f"http://tempo.{NAMESPACE}.svc:4318", {"podSelector": {}}, 4318),
        ("http://10.20.30.40:4318", {"ipBlock": {"cidr": "10.20.30.40/32"}}, 4318),
    ],
)
def test_the_collector_may_reach_its_export_endpoint_and_nothing_else(
    endpoint: str, peer: dict[str, Any] | None, port: int
) -> None:
    (rule,) = collector_egress(endpoint)
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    if peer is not None:
        assert rule["to"] == [peer]


def test_an_endpoint_the_chart_cannot_place_needs_its_peers_named() -> None:
    endpoint = "https://traces.corp.example:4318"
    message = render_failure(
        *sets("otelCollector.enabled=true", f"otelCollector.exportEndpoint={endpoint}")
    )
    assert "otelCollector.exportPeers" in message
    peer = {"ipBlock": {"cidr": "10.0.0.0/24"}}
    (rule,) = collector_egress(
        endpoint, "--set-json", f"otelCollector.exportPeers={json.dumps([peer])}"
    )
    assert rule == {"to": [peer], "ports": [{"protocol": "TCP", "port": 4318}]}


COMPONENTS = {
    "gateway": ("Deployment", f"{FULLNAME}-gateway"),
    "weaviate": ("StatefulSet", WEAVIATE),
    "embeddings": ("Deployment", f"{FULLNAME}-embeddings"),
    "llm": ("Deployment", f"{FULLNAME}-llm"),
    "otelCollector": ("Deployment", f"{FULLNAME}-otel-collector"),
}


def test_every_component_takes_extra_env_pod_annotations_and_a_priority_class() -> None:
    args = ["--set", "otelCollector.enabled=true"]
    for key in COMPONENTS:
        args += [
            "--set-json",
            f'{key}.extraEnv=[{{"name": "EXTRA_{key.upper()}", "value": "1"}}]',
            "--set",
            f"{key}.podAnnotations.holdfast\\.io/who={key}",
            "--set",
            f"{key}.priorityClassName=prio-{key.lower()}",
        ]
    objects = render(*args)
    for key, (kind, name) in COMPONENTS.items():
        workload = find(objects, kind, name)
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["holdfast.io/who"] == key
        assert pod_spec(workload)["priorityClassName"] == f"prio-{key.lower()}"
        assert env_of(next(containers(workload)))[f"EXTRA_{key.upper()}"]["value"] == "1"
    for obj in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
        kubernetes_validate.validate(obj, RENDER_KUBE_VERSION, strict=True)


# --- shared state for several gateway pods ----------------------------------------------------


def test_several_gateway_pods_need_a_database() -> None:
    message = render_failure("--set", "database.existingSecret=")
    assert "database" in message and "more than one gateway replica" in message
    objects = render(*SINGLE_GATEWAY, "--set", "database.existingSecret=")
    gateway_env = env_of(next(containers(find(objects, "Deployment", f"{FULLNAME}-gateway"))))
    assert "HOLDFAST_DATABASE__URL" not in gateway_env


def test_the_database_url_comes_from_its_secret_or_a_plain_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gateway.settings import Settings

    gateway_env = env_of(next(containers(find(render(), "Deployment", f"{FULLNAME}-gateway"))))
    assert gateway_env["HOLDFAST_DATABASE__URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "holdfast-database",
        "key": "url",
    }
    url = "postgresql://holdfast:dev@postgres:5432/holdfast"
    objects = render(*sets("database.existingSecret=", f"database.url={url}"))
    gateway_env = env_of(next(containers(find(objects, "Deployment", f"{FULLNAME}-gateway"))))
    assert gateway_env["HOLDFAST_DATABASE__URL"] == {"name": "HOLDFAST_DATABASE__URL", "value": url}
    # the gateway reads exactly that variable (env prefix HOLDFAST_, nested with __)
    monkeypatch.setenv("HOLDFAST_DATABASE__URL", url)
    database = Settings().database
    assert database.url is not None and database.url.get_secret_value() == url
