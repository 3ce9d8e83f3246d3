"""The chart runs Holdfast's own images (holdfast-gateway, -weaviate, -ollama, -models), pins
every image by digest under global.imageRegistry in production, and fills the model store from
the holdfast-models image on first start (idempotent: a marker file names the image copied)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_helm_chart import (
    FULLNAME,
    PINNED,
    POD_KINDS,
    REPO,
    VALUE_SETS,
    containers,
    env_of,
    find,
    pod_spec,
    render,
    render_failure,
    value_set_args,
)

pytestmark = pytest.mark.unit

GATEWAY = f"{FULLNAME}-gateway"
WORKER = f"{FULLNAME}-ingestion"
LLM = f"{FULLNAME}-llm"
EMBEDDINGS = f"{FULLNAME}-embeddings"
WEAVIATE = f"{FULLNAME}-weaviate"
DEVELOPMENT = ["--set", "config.environment=development"]
WORKERS_ON = ["--set", "ingestion.enabled=true"]
OLLAMA = ["--set", "llm.engine=ollama"]
PINNED_VALUES: dict[str, Any] = yaml.safe_load(PINNED.read_text())
PINNED_REGISTRY: str = PINNED_VALUES["global"]["imageRegistry"]
MODELS_DIGEST: str = PINNED_VALUES["models"]["image"]["digest"]
SHA256 = r"sha256:[0-9a-f]{64}"


def images(objects: list[dict[str, Any]]) -> list[str]:
    """Every image of every pod (containers and init containers)."""
    return [c["image"] for o in objects if o["kind"] in POD_KINDS for c in containers(o)]


def init_named(obj: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(obj).get("initContainers", []) if c["name"] == name]
    return found


def models_volume(obj: dict[str, Any]) -> dict[str, Any]:
    (volume,) = [v for v in pod_spec(obj)["volumes"] if v["name"] == "models"]
    return volume


# --- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [*WORKERS_ON, "--set", "otelCollector.enabled=true"],
        [*OLLAMA, "--set", "embeddings.engine=tei,embeddings.device=cpu"],
    ],
    ids=["defaults", "workers-otel", "ollama-cpu"],
)
def test_in_production_every_rendered_image_is_the_registrys_pinned_by_digest(
    extra: list[str],
) -> None:
    found = images(render(*extra))
    assert len(found) >= 6
    pinned = re.compile(rf"^{re.escape(PINNED_REGISTRY)}/[a-z0-9][\w./-]*(:[\w][\w.-]*)?@{SHA256}$")
    for image in found:
        assert pinned.match(image), image


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_example_value_sets_render_only_registry_images_pinned_by_digest(value_set: str) -> None:
    found = images(render(*value_set_args(value_set)))
    assert found, f"{value_set} renders no images"
    for image in found:
        assert re.search(rf"^registry\.customer\.internal/.+@{SHA256}$", image), image


def test_production_refuses_an_empty_registry_in_one_line_naming_the_value() -> None:
    message = render_failure("--set", "global.imageRegistry=")
    assert "global.imageRegistry: production pulls every image from your own registry" in message
    assert "config.environment: development" in message
    # the chart's defaults alone are production: they do not render either
    assert "global.imageRegistry:" in render_failure(pinned=False)


@pytest.mark.parametrize(
    ("digest_key", "extra"),
    [
        ("gateway.image.digest", []),
        ("models.image.digest", []),
        ("weaviate.image.digest", []),
        ("llm.vllm.image.digest", []),
        ("llm.ollama.image.digest", OLLAMA),
        ("embeddings.image.digest", ["--set", "embeddings.engine=tei"]),
        ("embeddings.image.cpuDigest", ["--set", "embeddings.engine=tei,embeddings.device=cpu"]),
        ("otelCollector.image.digest", ["--set", "otelCollector.enabled=true"]),
    ],
)
def test_production_refuses_any_image_without_a_digest(digest_key: str, extra: list[str]) -> None:
    message = render_failure(*extra, "--set", f"{digest_key}=")
    assert f"{digest_key}: production pins every image by digest" in message, message


def test_development_renders_with_tags_and_without_a_registry() -> None:
    objects = render(*DEVELOPMENT, *OLLAMA, *WORKERS_ON, pinned=False)
    found = set(images(objects))
    assert {
        "holdfast-gateway:0.1.0",
        "holdfast-models:0.1.0",
        "holdfast-ollama:0.12.6",
        "holdfast-weaviate:1.37.15",
    } <= found
    assert all("@" not in image for image in found), found


def test_default_tags_of_weaviate_and_ollama_are_the_versions_the_stack_pins() -> None:
    script = (REPO / "scripts" / "install-services.sh").read_text()
    values = yaml.safe_load((REPO / "helm" / "holdfast" / "values.yaml").read_text())
    for variable, image in (
        ("WEAVIATE_VERSION", values["weaviate"]["image"]),
        ("OLLAMA_VERSION", values["llm"]["ollama"]["image"]),
    ):
        pinned = re.search(rf'^{variable}="v([0-9.]+)"', script, re.MULTILINE)
        assert pinned, variable
        assert image["tag"] == pinned[1], variable


def test_vllm_image_tag_is_the_version_its_lock_pins() -> None:
    values = yaml.safe_load((REPO / "helm" / "holdfast" / "values.yaml").read_text())
    lock = (REPO / "offline_wheels" / "vllm" / "requirements.lock").read_text()
    pinned = re.search(r"^vllm==([0-9.]+) ", lock, re.MULTILINE)
    assert pinned
    assert values["llm"]["vllm"]["image"] == {**values["llm"]["vllm"]["image"], "tag": pinned[1]}
    assert values["llm"]["vllm"]["image"]["repository"] == "holdfast-vllm"


def test_gpu_embeddings_run_vllms_pooling_server_from_the_holdfast_vllm_image() -> None:
    objects = render()
    server = next(containers(find(objects, "Deployment", EMBEDDINGS)))
    llm = next(containers(find(objects, "Deployment", LLM)))
    assert server["image"] == llm["image"]
    assert server["image"].startswith(f"{PINNED_REGISTRY}/holdfast-vllm:")
    assert server["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    args = server["args"]
    assert args[args.index("--runner") + 1] == "pooling"
    assert args[args.index("--model") + 1] == "/models/all-MiniLM-L6-v2"
    assert args[args.index("--port") + 1] == "8080"
    env = env_of(server)
    assert env["HF_HUB_OFFLINE"]["value"] == "1" and env["VLLM_NO_USAGE_STATS"]["value"] == "1"


def test_vllm_embeddings_on_cpu_are_refused_with_the_way_out() -> None:
    message = render_failure("--set", "embeddings.engine=vllm,embeddings.device=cpu")
    assert "embeddings.engine: vllm" in message and "set embeddings.engine: tei" in message


@pytest.mark.parametrize("engine", ["", "tei"])
def test_cpu_embeddings_run_teis_cpu_image_unless_told_otherwise(engine: str) -> None:
    objects = render("--set", f"embeddings.engine={engine},embeddings.device=cpu")
    server = next(containers(find(objects, "Deployment", EMBEDDINGS)))
    assert "/huggingface/text-embeddings-inference:cpu-" in server["image"]
    assert "command" not in server and server["args"][0] == "--model-id"


def test_no_default_names_an_image_registry_host() -> None:
    values = yaml.safe_load((REPO / "helm" / "holdfast" / "values.yaml").read_text())

    def registries(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["registry"]] if "registry" in node and "repository" in node else []
            return found + [r for v in node.values() for r in registries(v)]
        return []

    assert values["global"]["imageRegistry"] == ""
    assert set(registries(values)) == {""}


def test_containers_run_the_binaries_of_holdfasts_images_as_uid_10001() -> None:
    objects = render(*OLLAMA, *WORKERS_ON)
    gateway = next(containers(find(objects, "Deployment", GATEWAY)))
    assert "command" not in gateway  # the image's entrypoint: holdfast serve
    weaviate = next(containers(find(objects, "StatefulSet", WEAVIATE)))
    assert weaviate["command"] == ["/usr/local/bin/weaviate-server"]
    assert weaviate["args"][:2] == ["--host", "0.0.0.0"]
    ollama = next(containers(find(objects, "Deployment", LLM)))
    assert (ollama["command"], ollama["args"]) == (["/usr/local/bin/ollama"], ["serve"])
    worker = next(containers(find(objects, "Deployment", WORKER)))
    assert worker["command"] == ["holdfast"] and worker["args"][0] == "worker"
    for obj in (o for o in objects if o["kind"] in POD_KINDS):
        context = pod_spec(obj)["securityContext"]
        assert context["runAsUser"] == 10001, obj["metadata"]["name"]
        if obj["metadata"]["name"] != f"{FULLNAME}-otel-collector":
            assert context.get("fsGroup", 10001) == 10001, obj["metadata"]["name"]


# --- the model store --------------------------------------------------------------------------


def test_every_pod_reading_models_fills_the_store_first_from_the_models_image() -> None:
    objects = render(*WORKERS_ON)
    for name in (GATEWAY, WORKER, LLM, EMBEDDINGS):
        obj = find(objects, "Deployment", name)
        first = pod_spec(obj)["initContainers"][0]
        assert first["name"] == "models-populate", name
        assert first["image"] == f"{PINNED_REGISTRY}/holdfast-models:0.1.0@{MODELS_DIGEST}"
        assert first["command"][:2] == ["/bin/sh", "-c"]
        assert env_of(first)["MODELS_VERSION"]["value"] == MODELS_DIGEST
        assert first["volumeMounts"] == [{"name": "models", "mountPath": "/target"}]
        assert first["securityContext"]["readOnlyRootFilesystem"] is True
        assert "readOnly" not in models_volume(obj).get("persistentVolumeClaim", {}), name
        main = next(containers(obj))
        mount = next(m for m in main["volumeMounts"] if m["name"] == "models")
        assert mount == {"name": "models", "mountPath": "/models", "readOnly": True}, name
    for name in (GATEWAY, WORKER):
        main = next(containers(find(objects, "Deployment", name)))
        assert env_of(main)["HOLDFAST_MODELS_DIR"]["value"] == "/models"


def test_populate_false_leaves_the_store_to_the_cluster_and_mounts_it_read_only() -> None:
    objects = render(*WORKERS_ON, "--set", "models.populate=false")
    for name in (GATEWAY, WORKER, LLM, EMBEDDINGS):
        obj = find(objects, "Deployment", name)
        names = [c["name"] for c in pod_spec(obj).get("initContainers", [])]
        assert "models-populate" not in names, name
        assert models_volume(obj)["persistentVolumeClaim"]["readOnly"] is True, name
    assert "holdfast-models" not in " ".join(images(objects))


def _populate_script(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The rendered populate script, pointed at a source and target folder under tmp_path."""
    obj = find(render(), "Deployment", GATEWAY)
    script = init_named(obj, "models-populate")["command"][2]
    source, target = tmp_path / "image-models", tmp_path / "store"
    (source / "chat").mkdir(parents=True)
    (source / "chat" / "model.gguf").write_bytes(b"GGUF v1")
    (source / "all-minilm-l6-v2").mkdir()
    (source / "all-minilm-l6-v2" / "model.onnx").write_bytes(b"onnx v1")
    target.mkdir()
    path = tmp_path / "populate.sh"
    path.write_text(script.replace("/target", str(target)).replace("/models/.", f"{source}/."))
    return path, source, target


def _run(script: Path, version: str, timeout_s: int = 1800) -> str:
    env = {"PATH": "/usr/bin:/bin", "MODELS_VERSION": version, "LOCK_TIMEOUT_S": str(timeout_s)}
    done = subprocess.run(
        [shutil.which("sh") or "/bin/sh", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_populate_copies_once_per_models_image_and_takes_over_a_dead_pods_lock(
    tmp_path: Path,
) -> None:
    script, source, target = _populate_script(tmp_path)
    first = _run(script, "sha256:" + "1" * 64)
    assert "copying" in first
    assert (target / "chat" / "model.gguf").read_bytes() == b"GGUF v1"
    assert (target / ".holdfast-models").read_text() == "sha256:" + "1" * 64 + "\n"
    assert not (target / ".holdfast-models.lock").exists()

    # a restart: the marker names this image, nothing is copied (a local change survives)
    (target / "chat" / "model.gguf").write_bytes(b"touched")
    assert "already in the store" in _run(script, "sha256:" + "1" * 64)
    assert (target / "chat" / "model.gguf").read_bytes() == b"touched"

    # a new models image: copied again; a lock left by a pod that died is taken over
    (source / "chat" / "model.gguf").write_bytes(b"GGUF v2")
    (target / ".holdfast-models.lock").mkdir()
    second = _run(script, "sha256:" + "2" * 64, timeout_s=0)
    assert "taking over" in second and "copying" in second
    assert (target / "chat" / "model.gguf").read_bytes() == b"GGUF v2"
    assert (target / ".holdfast-models").read_text().strip() == "sha256:" + "2" * 64


def test_ollama_imports_the_packaged_gguf_from_the_store_before_it_serves() -> None:
    from gateway.models.packaged import DEFAULT_CHAT_MODEL, PACKAGED_CHAT_MODELS

    objects = render(*OLLAMA)
    llm = find(objects, "Deployment", LLM)
    names = [c["name"] for c in pod_spec(llm)["initContainers"]]
    assert names == ["models-populate", "ollama-import"]
    ollama = next(containers(llm))
    imp = init_named(llm, "ollama-import")
    assert imp["image"] == ollama["image"]
    assert env_of(imp)["OLLAMA_MODELS"] == env_of(ollama)["OLLAMA_MODELS"]
    assert env_of(imp)["OLLAMA_HOST"]["value"].startswith("127.0.0.1:")
    assert env_of(imp)["MODEL"]["value"] == "holdfast-qwen2.5-coder-0.5b"
    script = imp["command"][2]
    assert 'ollama create "$MODEL" -f /etc/ollama/Modelfile' in script
    modelfile = find(objects, "ConfigMap", f"{FULLNAME}-ollama")["data"]["Modelfile"]
    model = PACKAGED_CHAT_MODELS[DEFAULT_CHAT_MODEL]
    assert modelfile == model.modelfile(Path("/models/chat") / model.file_name)
    assert model.ollama_name == env_of(imp)["MODEL"]["value"]
    annotations = llm["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/modelfile" in annotations

    off = render(
        *OLLAMA, "--set", "llm.ollama.import.enabled=false", "--set", "models.populate=false"
    )
    llm = find(off, "Deployment", LLM)
    assert "initContainers" not in pod_spec(llm)
    assert models_volume(llm)["persistentVolumeClaim"]["readOnly"] is True
    assert not [
        o for o in off if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-ollama")
    ]
