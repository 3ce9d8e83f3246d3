"""The Helm chart (helm/holdfast): lints, renders, validates offline, and keeps its promises.

Every rendered object is checked against the Kubernetes JSON schemas shipped by the
kubernetes-validate package (no network). Helm is the pinned binary scripts/install-helm.sh builds
into .venv/bin (`make setup`); each value set is rendered once per module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "holdfast"
EXAMPLES = REPO / "helm" / "examples"
INSTALL_SCRIPT = REPO / "scripts" / "install-helm.sh"
# Production refuses an empty global.imageRegistry and any image without a digest: every render
# starts from this example (registry and a digest per image) unless it asks for `pinned=False`.
PINNED = EXAMPLES / "production-images.yaml"
RELEASE = "hf"
NAMESPACE = "holdfast"
FULLNAME = f"{RELEASE}-holdfast"
REGISTRY = "registry.customer.internal"
# The chart's kubeVersion floor and the newest schema set of the pinned kubernetes-validate.
KUBE_VERSIONS = ("1.29", "1.37")
RENDER_KUBE_VERSION = KUBE_VERSIONS[-1]
VALUE_SETS = ("default", "gpu-production", "cpu-minimal")
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
POD_KINDS = {"Deployment", "StatefulSet", "Pod"}
CREDENTIAL_ENV = re.compile(r"(KEY|KEYS|TOKEN|PASSWORD|SECRET|CREDENTIALS?)$", re.IGNORECASE)


# --- helm -------------------------------------------------------------------------------------


@cache
def helm_binary() -> str:
    """The pinned helm in .venv/bin, else one on PATH; none at all is a failure, not a skip."""
    venv_helm = REPO / ".venv" / "bin" / "helm"
    if venv_helm.is_file() and os.access(venv_helm, os.X_OK):
        return str(venv_helm)
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    pytest.fail(
        "helm not found in .venv/bin or on PATH: run `make setup` (scripts/install-helm.sh)"
    )


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def template(
    *args: str, kube_version: str = RENDER_KUBE_VERSION, pinned: bool = True
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart; with `pinned`, PINNED comes first (later values win)."""
    return helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        f"{kube_version}.0",
        *(["-f", str(PINNED)] if pinned else []),
        *args,
    )


def render(
    *args: str, kube_version: str = RENDER_KUBE_VERSION, pinned: bool = True
) -> list[dict[str, Any]]:
    """Rendered objects; a failed render fails the test with helm's message."""
    result = template(*args, kube_version=kube_version, pinned=pinned)
    if result.returncode != 0:
        pytest.fail(f"helm template {' '.join(args)} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def value_set_args(name: str) -> list[str]:
    return ["-f", str(EXAMPLES / f"{name}.yaml"), "--set", f"global.imageRegistry={REGISTRY}"]


def render_failure(*args: str, pinned: bool = True) -> str:
    result = template(*args, pinned=pinned)
    assert result.returncode != 0, f"helm template {' '.join(args)} rendered, it should fail"
    return result.stderr


# --- rendered objects -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renders() -> dict[str, list[dict[str, Any]]]:
    """Each example value set rendered once, with the customer's registry."""
    return {name: render(*value_set_args(name)) for name in VALUE_SETS}


@pytest.fixture(scope="module")
def gpu(renders: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return renders["gpu-production"]


@pytest.fixture(scope="module")
def cpu(renders: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return renders["cpu-minimal"]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    return spec


def containers(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod's containers, then its init containers (so the first is the main one)."""
    spec = pod_spec(obj)
    yield from spec["containers"]
    yield from spec.get("initContainers", [])


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_file(objects: list[dict[str, Any]], component: str, key: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        find(objects, "ConfigMap", f"{FULLNAME}-{component}")["data"][key]
    )
    return loaded


def pod_annotations(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    template_metadata = find(objects, "Deployment", name)["spec"]["template"]["metadata"]
    annotations: dict[str, str] = template_metadata["annotations"]
    return annotations


# --- tooling ----------------------------------------------------------------------------------


def test_helm_is_the_version_install_script_pins() -> None:
    pinned = re.search(r'^HELM_VERSION="(v[0-9.]+)"', INSTALL_SCRIPT.read_text(), re.MULTILINE)
    assert pinned, "scripts/install-helm.sh must pin HELM_VERSION"
    reported = helm("version", "--short").stdout.strip()
    assert reported == pinned.group(1), (
        f"{helm_binary()} reports {reported!r}, scripts/install-helm.sh pins {pinned.group(1)}:"
        " run `make setup`"
    )


@pytest.mark.parametrize("value_set", [None, *VALUE_SETS])
def test_helm_lint_strict_passes(value_set: str | None) -> None:
    """The defaults are production, so they lint with the pinned images (bare, see below)."""
    extra = [] if value_set is None else ["-f", str(EXAMPLES / f"{value_set}.yaml")]
    result = helm(
        "lint",
        "--strict",
        str(CHART),
        "--kube-version",
        f"{RENDER_KUBE_VERSION}.0",
        "-f",
        str(PINNED),
        *extra,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_bare_defaults_refuse_to_render_until_the_registry_is_set() -> None:
    """Helm's lint mode reports a template `fail` as INFO and goes on, so `helm lint` of the bare
    production defaults passes while printing the guard rail; `helm template` (and install)
    stops on it. Development renders the bare defaults."""
    lint = [helm_binary(), "lint", "--strict", str(CHART), "--kube-version"]
    lint.append(f"{RENDER_KUBE_VERSION}.0")
    bare = subprocess.run(lint, capture_output=True, text=True, timeout=120, check=False)
    assert "Fail: global.imageRegistry: production pulls every image" in bare.stderr
    stderr = render_failure(pinned=False)
    assert "global.imageRegistry: production pulls every image" in stderr
    assert render("--set", "config.environment=development", pinned=False)


# --- Kubernetes schemas -----------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(
    value_set: str, kube_version: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    objects = (
        renders[value_set]
        if kube_version == RENDER_KUBE_VERSION
        else render(*value_set_args(value_set), kube_version=kube_version)
    )
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(exc.message)
    assert not errors, "\n".join(errors)


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_image_comes_from_the_configured_registry_pinned(
    value_set: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    images = [
        c["image"] for o in renders[value_set] if o["kind"] in POD_KINDS for c in containers(o)
    ]
    assert images
    for image in images:
        assert image.startswith(f"{REGISTRY}/"), image
        assert not image.endswith(":latest") and ":latest@" not in image, image
        assert re.search(r":[\w][\w.-]*(@sha256:[0-9a-f]{64})?$|@sha256:[0-9a-f]{64}$", image), (
            image
        )


def test_every_pod_uses_the_global_pull_secrets(gpu: list[dict[str, Any]]) -> None:
    pods = [o for o in gpu if o["kind"] in POD_KINDS]
    assert pods, "the value set renders no workloads"
    for obj in pods:
        assert pod_spec(obj)["imagePullSecrets"] == [{"name": "customer-registry"}], obj["metadata"]


def test_a_digest_pins_the_image_and_latest_is_refused() -> None:
    digest = "sha256:" + "ab" * 32
    objects = render("--set", f"gateway.image.digest={digest}")
    gateway = next(containers(find(objects, "Deployment", f"{FULLNAME}-gateway")))
    assert (
        gateway["image"] == f"registry.customer.internal/holdfast/holdfast-gateway:0.1.0@{digest}"
    )
    assert "tag" in render_failure("--set", "llm.vllm.image.tag=latest")


# --- workloads --------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_workload_container_has_resources_probes_and_runs_as_non_root(
    value_set: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    workloads = [o for o in renders[value_set] if o["kind"] in WORKLOAD_KINDS]
    assert {o["metadata"]["name"] for o in workloads} >= {
        f"{FULLNAME}-{c}" for c in ("gateway", "weaviate", "embeddings", "llm")
    }
    for obj in workloads:
        pod_context = pod_spec(obj).get("securityContext", {})
        for container in containers(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            assert resources.get("requests") and resources.get("limits"), where
            assert {"cpu", "memory"} <= resources["limits"].keys(), where
            if container in pod_spec(obj).get("initContainers", []):
                pass  # runs to completion before the pod starts: nothing to probe
            elif obj["metadata"]["name"] != f"{FULLNAME}-ingestion":
                assert container.get("livenessProbe"), where
                assert container.get("readinessProbe"), where
            else:  # no port to probe; a stuck job is caught by its lease (test_helm_workers.py)
                assert pod_spec(obj)["terminationGracePeriodSeconds"] >= 300, where
            context = container.get("securityContext", {})
            assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where


def test_gateway_probes_use_healthz_and_readyz(gpu: list[dict[str, Any]]) -> None:
    gateway = next(containers(find(gpu, "Deployment", f"{FULLNAME}-gateway")))
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_gpu_workloads_request_nvidia_gpus_in_the_gpu_value_set(gpu: list[dict[str, Any]]) -> None:
    expected = {f"{FULLNAME}-embeddings": 1, f"{FULLNAME}-llm": 4}
    for name, count in expected.items():
        obj = find(gpu, "Deployment", name)
        container = next(containers(obj))
        assert container["resources"]["limits"]["nvidia.com/gpu"] == count, name
        assert any(t.get("key") == "nvidia.com/gpu" for t in pod_spec(obj)["tolerations"]), name
        assert pod_spec(obj)["runtimeClassName"] == "nvidia", name
    args = next(containers(find(gpu, "Deployment", f"{FULLNAME}-llm")))["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert args[args.index("--max-model-len") + 1] == "32768"


def test_cpu_value_set_requests_no_gpu_and_uses_the_cpu_images(cpu: list[dict[str, Any]]) -> None:
    for obj in (o for o in cpu if o["kind"] in WORKLOAD_KINDS):
        for container in containers(obj):
            assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
        assert "tolerations" not in pod_spec(obj), obj["metadata"]["name"]
    embeddings = next(containers(find(cpu, "Deployment", f"{FULLNAME}-embeddings")))
    assert "/huggingface/text-embeddings-inference:cpu-1.8@sha256:" in embeddings["image"]
    llm = next(containers(find(cpu, "Deployment", f"{FULLNAME}-llm")))
    assert llm["name"] == "ollama"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_model_servers_read_models_from_the_store_offline(
    value_set: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    for component in ("embeddings", "llm"):
        obj = find(renders[value_set], "Deployment", f"{FULLNAME}-{component}")
        container = next(containers(obj))
        mount = next(m for m in container["volumeMounts"] if m["name"] == "models")
        assert mount == {"name": "models", "mountPath": "/models", "readOnly": True}
        volume = next(v for v in pod_spec(obj)["volumes"] if v["name"] == "models")
        assert "persistentVolumeClaim" in volume or "hostPath" in volume
        env = env_of(container)
        if container["name"] != "ollama":
            assert env["HF_HUB_OFFLINE"]["value"] == "1"
        assert any(str(arg).startswith("/models/") for arg in container.get("args", [])) or (
            env.get("OLLAMA_MODELS", {}).get("value", "").startswith("/models/")
        )


def test_weaviate_is_a_raft_cluster_with_api_key_auth_from_the_existing_secret(
    gpu: list[dict[str, Any]],
) -> None:
    sts = find(gpu, "StatefulSet", f"{FULLNAME}-weaviate")
    assert sts["spec"]["replicas"] == 3
    assert (
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        == "200Gi"
    )
    env = env_of(next(containers(sts)))
    assert env["CLUSTER_HOSTNAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["RAFT_BOOTSTRAP_EXPECT"]["value"] == "3"
    assert env["RAFT_JOIN"]["value"] == ",".join(f"{FULLNAME}-weaviate-{i}" for i in range(3))
    assert env["REPLICATION_MINIMUM_FACTOR"]["value"] == "3"
    assert env["AUTHENTICATION_APIKEY_ENABLED"]["value"] == "true"
    assert env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"]["value"] == "false"
    assert env["AUTHENTICATION_APIKEY_ALLOWED_KEYS"]["valueFrom"]["secretKeyRef"] == {
        "name": "holdfast-weaviate-auth",
        "key": "api-key",
    }
    assert env["DEFAULT_VECTORIZER_MODULE"]["value"] == "none"
    assert env["ENABLE_MODULES"]["value"] == ""
    assert env["DISABLE_TELEMETRY"]["value"] == "true"


def test_gateway_scales_with_hpa_and_pdb_and_spreads_over_nodes(gpu: list[dict[str, Any]]) -> None:
    deployment = find(gpu, "Deployment", f"{FULLNAME}-gateway")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = find(gpu, "HorizontalPodAutoscaler", f"{FULLNAME}-gateway")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    pdb = find(gpu, "PodDisruptionBudget", f"{FULLNAME}-gateway")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    spread = pod_spec(deployment)["topologySpreadConstraints"]
    assert spread[0]["labelSelector"]["matchLabels"] == selector
    account = find(gpu, "ServiceAccount", f"{FULLNAME}-gateway")
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(deployment)["automountServiceAccountToken"] is False


def test_jwks_is_mounted_from_the_existing_configmap(gpu: list[dict[str, Any]]) -> None:
    deployment = find(gpu, "Deployment", f"{FULLNAME}-gateway")
    config = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == "config")
    sources = config["projected"]["sources"]
    assert {
        "configMap": {"name": "holdfast-jwks", "items": [{"key": "jwks.json", "path": "jwks.json"}]}
    } in sources
    mount = next(m for m in next(containers(deployment))["volumeMounts"] if m["name"] == "config")
    assert mount["mountPath"] == "/etc/holdfast"


# --- configuration files ----------------------------------------------------------------------


def test_holdfast_yaml_points_at_the_charts_weaviate(gpu: list[dict[str, Any]]) -> None:
    config = config_file(gpu, "config", "holdfast.yaml")
    service = find(gpu, "Service", f"{FULLNAME}-weaviate")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert config["weaviate"] == {
        "managed": False,
        "host": f"{FULLNAME}-weaviate",
        "http_port": ports["http"],
        "grpc_port": ports["grpc"],
        "collection": "HoldfastChunk",
        "query_timeout_s": 30,
        "write_consistency": "QUORUM",
        "read_consistency": "QUORUM",
        "replication_factor": 3,  # the example's three Weaviate nodes, replication 3
    }
    assert config["models_file"] == "/etc/holdfast/models.yaml"
    assert config["ollama"] == {"managed": False}
    assert config["gateway"] == {"host": "0.0.0.0", "port": 8080}
    assert config["retrieval"]["top_k"] == 8
    env = env_of(next(containers(find(gpu, "Deployment", f"{FULLNAME}-gateway"))))
    assert env["HOLDFAST_CONFIG"]["value"] == "/etc/holdfast/holdfast.yaml"
    assert env["HOLDFAST_HOME"]["value"] == "/var/lib/holdfast"


def test_models_yaml_points_at_the_charts_vllm_and_tei(gpu: list[dict[str, Any]]) -> None:
    models = {m["model_name"]: m for m in config_file(gpu, "models", "models.yaml")["model_list"]}
    chat = models["chat-default"]["litellm_params"]
    assert chat["model"] == "hosted_vllm/llama-3.3-70b-instruct"
    assert chat["api_base"] == f"http://{FULLNAME}-llm:8000/v1"
    embed = models["embed-default"]
    assert embed["litellm_params"]["model"] == "openai/bge-m3"
    assert embed["litellm_params"]["api_base"] == f"http://{FULLNAME}-embeddings:80/v1"
    assert embed["model_info"] == {"mode": "embedding"}
    llm_port = find(gpu, "Service", f"{FULLNAME}-llm")["spec"]["ports"][0]["port"]
    tei_port = find(gpu, "Service", f"{FULLNAME}-embeddings")["spec"]["ports"][0]["port"]
    assert (llm_port, tei_port) == (8000, 80)


def test_models_yaml_points_at_the_charts_ollama(cpu: list[dict[str, Any]]) -> None:
    models = {m["model_name"]: m for m in config_file(cpu, "models", "models.yaml")["model_list"]}
    chat = models["chat-default"]["litellm_params"]
    assert chat == {
        "model": "ollama_chat/holdfast-qwen2.5-coder-0.5b",
        "api_base": f"http://{FULLNAME}-llm:11434",
        "timeout": 120,
        "max_retries": 1,
        "max_tokens": 512,
        "temperature": 0.1,
    }
    assert find(cpu, "Service", f"{FULLNAME}-llm")["spec"]["ports"][0]["port"] == 11434


def test_changing_the_models_list_rolls_the_gateway_pods() -> None:
    gateway = f"{FULLNAME}-gateway"
    model_list = [
        {
            "model_name": "chat-default",
            "litellm_params": {"model": "hosted_vllm/other", "api_base": "http://x:8000/v1"},
        },
        {
            "model_name": "embed-default",
            "litellm_params": {"model": "openai/e", "api_base": "http://y:80/v1"},
        },
    ]
    before = pod_annotations(render(), gateway)
    changed = render("--set-json", f"models.modelList={json.dumps(model_list)}")
    after = pod_annotations(changed, gateway)
    assert after["checksum/models"] != before["checksum/models"]
    assert after["checksum/config"] == before["checksum/config"]
    assert config_file(changed, "models", "models.yaml")["model_list"] == model_list
    tuned = pod_annotations(render("--set-json", "models.chat.temperature=0.7"), gateway)
    assert tuned["checksum/models"] != before["checksum/models"]
    retuned = pod_annotations(render("--set", "config.retrieval.top_k=9"), gateway)
    assert retuned["checksum/config"] != before["checksum/config"]


# --- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_no_secret_is_rendered_and_credentials_come_only_from_existing_secrets(
    value_set: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    objects = renders[value_set]
    assert not [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"]
    for obj in (o for o in objects if o["kind"] in POD_KINDS):
        for container in containers(obj):
            for name, item in env_of(container).items():
                if CREDENTIAL_ENV.search(name):
                    assert "value" not in item, f"{obj['metadata']['name']}: {name} is a literal"
                    assert "secretKeyRef" in item["valueFrom"], name
    gateway_env = env_of(next(containers(find(objects, "Deployment", f"{FULLNAME}-gateway"))))
    assert gateway_env["HOLDFAST_BOOTSTRAP_ADMIN_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "holdfast-api-keys",
        "key": "admin-key",
    }
    assert gateway_env["HOLDFAST_WEAVIATE__API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "holdfast-weaviate-auth",
        "key": "api-key",
    }


# --- network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_a_namespace_wide_network_policy_denies_egress_by_default(
    value_set: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    default_deny = [
        p
        for p in renders[value_set]
        if p["kind"] == "NetworkPolicy" and p["spec"]["podSelector"] == {}
    ]
    assert len(default_deny) == 1
    spec = default_deny[0]["spec"]
    assert {"Ingress", "Egress"} <= set(spec["policyTypes"])
    assert not spec.get("egress") and not spec.get("ingress")


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_egress_never_leaves_the_namespace_except_to_cluster_dns(
    value_set: str, renders: dict[str, list[dict[str, Any]]]
) -> None:
    for policy in (o for o in renders[value_set] if o["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), f"{policy['metadata']['name']}: egress rule without peers"
            for peer in rule["to"]:
                assert "ipBlock" not in peer, policy["metadata"]["name"]
                if "namespaceSelector" in peer:
                    assert peer["namespaceSelector"] == {
                        "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                    }
                    assert {p["port"] for p in rule["ports"]} == {53}
                else:
                    assert (
                        peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
                    )


def test_only_the_gateway_reaches_the_model_servers(gpu: list[dict[str, Any]]) -> None:
    gateway_selector = find(gpu, "Deployment", f"{FULLNAME}-gateway")["spec"]["selector"]
    llm_policy = find(gpu, "NetworkPolicy", f"{FULLNAME}-llm")
    assert llm_policy["spec"]["ingress"] == [
        {"from": [{"podSelector": gateway_selector}], "ports": [{"protocol": "TCP", "port": 8000}]}
    ]
    gateway_policy = find(gpu, "NetworkPolicy", f"{FULLNAME}-gateway")
    sources = gateway_policy["spec"]["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in sources


# --- values: schema, guard rails, docs --------------------------------------------------------


def test_schema_rejects_an_unknown_key() -> None:
    assert "additional properties 'replicaCount' not allowed" in render_failure(
        "--set", "gateway.replicaCount=3"
    )
    assert "additional properties" in render_failure("--set", "surprise=1")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["gateway.auth.existingSecret="], "gateway.auth.existingSecret"),
        (["weaviate.auth.enabled=false"], "weaviate.auth.enabled"),
        (["llm.vllm.gpuCount=0"], "llm.vllm.gpuCount"),
        (["llm.vllm.gpuCount=2", "llm.vllm.tensorParallelSize=4"], "tensorParallelSize"),
        (["embeddings.gpu.count=0"], "embeddings.gpu.count"),
        (["weaviate.replicationFactor=2"], "replicationFactor"),
        (["gateway.autoscaling.enabled=false", "gateway.replicas=1"], "minAvailable"),
        (["modelStore.existingClaim="], "modelStore.existingClaim"),
        (["llm.enabled=false"], "models.modelList"),
    ],
)
def test_guard_rails_refuse_unsafe_values(values: list[str], message: str) -> None:
    args = [arg for value in values for arg in ("--set", value)]
    assert message in render_failure(*args)


def test_development_may_run_without_secrets() -> None:
    objects = render(
        "--set",
        "config.environment=development",
        "--set",
        "gateway.auth.existingSecret=",
        "--set",
        "weaviate.auth.enabled=false",
    )
    weaviate_env = env_of(next(containers(find(objects, "StatefulSet", f"{FULLNAME}-weaviate"))))
    assert weaviate_env["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"]["value"] == "true"
    assert "AUTHENTICATION_APIKEY_ALLOWED_KEYS" not in weaviate_env


@cache
def values_table_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "values_table", REPO / "helm" / "tools" / "values_table.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_every_value_is_documented() -> None:
    assert values_table_module().undocumented() == []


def test_readme_values_table_is_current() -> None:
    tool = values_table_module()
    readme = tool.README.read_text(encoding="utf-8")
    assert tool.render_readme(readme) == readme, "run: python helm/tools/values_table.py --write"
    documented = {row.key for row in tool.rows()}
    assert {
        "global.imageRegistry",
        "llm.vllm.tensorParallelSize",
        "weaviate.replicationFactor",
    } <= documented


# --- helm test hook ---------------------------------------------------------------------------


def test_helm_test_hook_calls_readyz_and_search_from_the_gateway_image(
    gpu: list[dict[str, Any]],
) -> None:
    hook = find(gpu, "Pod", f"{FULLNAME}-test")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    container = next(containers(hook))
    gateway = next(containers(find(gpu, "Deployment", f"{FULLNAME}-gateway")))
    assert container["image"] == gateway["image"]
    assert container["command"][:2] == ["python", "-c"]
    script = container["command"][2]
    compile(script, "helm-test", "exec")
    assert '"/readyz"' in script and '"/v1/search"' in script
    env = env_of(container)
    assert env["HOLDFAST_URL"]["value"] == f"http://{FULLNAME}-gateway:8080"
    assert env["HOLDFAST_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "holdfast-api-keys"
    assert pod_spec(hook)["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_rendered_config_files_are_valid_for_the_gateway_itself(
    renders: dict[str, list[dict[str, Any]]], value_set: str
) -> None:
    """The chart and the gateway must agree on the file formats (both refuse unknown keys)."""
    from gateway.models.config import ModelsConfig
    from gateway.settings import Settings

    objects = renders[value_set]
    settings = Settings(**config_file(objects, "config", "holdfast.yaml"))
    assert settings.weaviate.managed is False and settings.ollama.managed is False
    models = ModelsConfig.model_validate(config_file(objects, "models", "models.yaml"))
    assert {e.model_name for e in models.model_list} >= {"chat-default", "embed-default"}
