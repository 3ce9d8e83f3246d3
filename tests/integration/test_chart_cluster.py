"""The Helm chart installed with `helm install` on a real single-node Kubernetes cluster (issue
#17): Kubernetes v1.33.5, etcd and CoreDNS built from the Go module proxy by
scripts/install-kubernetes.sh, containerd, runc and the CNI bridge from Debian (kube_cluster.py
assembles them). Nothing comes from a public image registry: the four images are built from the
HEAD commit, copied with skopeo into a Distribution registry on loopback (as the Ansible
kubernetes role copies the bundle's images into a customer's), and the chart of the same commit
pulls them from there by digest, in production mode (`global.imageRegistry`, digests required).

Then, as an operator would: the Secrets made as the chart README makes them, a StorageClass
with local PersistentVolumes (the node has no provisioner) for Weaviate's claim, the model store
and the gateway's home; `helm install --wait`, `helm test`, an ingest key made with the
bootstrap admin key, the sample leave policy ingested and a cited answer through the gateway
Service's cluster IP (kube-proxy's rules); then `helm upgrade` to a second build of the gateway
image (the same tree under another commit, so another digest) and `helm rollback`, each still
answering with the same key and document.

Not shown here: several nodes, GPUs (vLLM, TEI), the Ingress, and NetworkPolicies (rendered and
applied, but the bridge plugin enforces none).

Ports 29020-29030 (the cluster) and 29040 (the registry); the bridge hfkube0 on 10.244.0.0/24.
HOLDFAST_TEST_IMAGES_DIR reuses images built before (see chart_support.head_images)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.chart_support import (
    HELM,
    NAMESPACE,
    RELEASE,
    Built,
    Image,
    ask_cited,
    build_images,
    chart_of,
    head_images,
    ingest_document,
    ingest_key,
    new_secrets,
    push,
    serving_registry,
    single_node_values,
)
from tests.integration.kube_cluster import (
    PAUSE_IMAGE,
    STORAGE_CLASS,
    Ports,
    SingleNodeCluster,
    pause_image,
)
from tests.integration.podman_support import BUILD_TOOLS, REPO, apt_install, head_revision

pytestmark = pytest.mark.integration

BIN = REPO / ".venv" / "bin"
PORTS = Ports(29020)
REGISTRY_PORT = 29040
EPOCH = 1_764_806_400  # the pause image's dates
INSTALL_TIMEOUT = "12m"
# claim -> size; each gets a local PersistentVolume of its own
CLAIMS = {"holdfast-models": "10Gi", "holdfast-home": "2Gi"}
WEAVIATE_VOLUME = "5Gi"
TIMINGS: list[tuple[str, float]] = []


@dataclass
class Installed:
    cluster: SingleNodeCluster
    registry: str  # host:port/holdfast
    chart: Path
    values: Path
    built: Built
    secrets: dict[str, dict[str, str]]
    auth: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The gateway Service's cluster IP: kube-proxy routes it from the node too."""
        service = json.loads(
            self.cluster.kubectl("get", "service", f"{RELEASE}-gateway", "-n", NAMESPACE,
                                 "-o", "json").stdout
        )  # fmt: skip
        port = service["spec"]["ports"][0]["port"]
        return f"http://{service['spec']['clusterIP']}:{port}"

    def helm(self, *args: str, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = subprocess.run(
            [str(HELM), *args, "-n", NAMESPACE],
            capture_output=True,
            text=True,
            env=self.cluster.env,
            timeout=timeout,
            check=False,
        )
        TIMINGS.append((f"helm {args[0]}", time.monotonic() - started))
        if done.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args[:2])} exited {done.returncode}: {done.stderr[-2000:]}\n"
                + self.cluster.describe_failures(NAMESPACE)
            )
        return done

    def gateway_image_ids(self) -> set[str]:
        """The image digests the running, ready gateway pods run (from the kubelet's status)."""
        pods = json.loads(
            self.cluster.kubectl(
                "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=gateway",
                "-o", "json",
            ).stdout
        )  # fmt: skip
        ids = set()
        for pod in pods["items"]:
            if pod["metadata"].get("deletionTimestamp"):
                continue
            for status in pod["status"].get("containerStatuses", []):
                if status["name"] == "gateway" and status.get("ready"):
                    ids.add(status["imageID"].rsplit("@", 1)[-1])
        return ids


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("a kubelet, containerd and the pods' bridge network need root")
    apt_install("test_chart_cluster", *BUILD_TOOLS, "skopeo", "catatonit", "openssl")
    started = time.monotonic()
    built = subprocess.run(
        ["bash", str(REPO / "scripts" / "install-kubernetes.sh"), str(BIN)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
    TIMINGS.append(("Kubernetes binaries built or found", time.monotonic() - started))


@pytest.fixture(scope="module")
def built(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Built:
    started = time.monotonic()
    images = head_images(tmp_path_factory.mktemp("images"), head_revision())
    TIMINGS.append(("images built", time.monotonic() - started))
    return images


@pytest.fixture(scope="module")
def second_gateway(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The gateway image built again from the same tree under another commit (made with `git
    commit-tree`, no branch moves): the same code, another revision label, another digest."""
    who = {"NAME": "holdfast-test", "EMAIL": "test@holdfast.invalid"}
    identity = {f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()}
    commit = subprocess.run(
        ["git", "-C", str(REPO), "commit-tree", f"{built.revision}^{{tree}}", "-p",
         built.revision, "-m", "test_chart_cluster: the same tree, a second image build"],
        capture_output=True, text=True, timeout=60, check=True, env={**os.environ, **identity},
    ).stdout.strip()  # fmt: skip
    started = time.monotonic()
    image = build_images(
        tmp_path_factory.mktemp("images-second"), commit, only=("holdfast-gateway",)
    ).images["holdfast-gateway"]
    TIMINGS.append(("second gateway image built", time.monotonic() - started))
    assert image.digest != built.images["holdfast-gateway"].digest
    return image


@pytest.fixture(scope="module")
def cluster(tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNodeCluster]:
    work = tmp_path_factory.mktemp("cluster")
    with serving_registry(work / "registry", REGISTRY_PORT) as registry_host:
        push(pause_image(work, EPOCH), f"{registry_host}/{PAUSE_IMAGE}:1")
        # a short root: containerd's and the kubelet's unix sockets live under it
        root = Path(tempfile.mkdtemp(prefix="hfk-", dir="/tmp"))
        c = SingleNodeCluster(root=root, bin_dir=BIN, ports=PORTS, registry_host=registry_host)
        try:
            c.start()
            TIMINGS.extend(c.timings)
            yield c
        finally:
            c.stop(namespaces=[NAMESPACE])


@pytest.fixture(scope="module")
def installed(
    cluster: SingleNodeCluster, built: Built, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    registry = f"{cluster.registry_host}/holdfast"
    started = time.monotonic()
    for image in built.images.values():
        push(image.archive, f"{registry}/{image.name}:{image.tag}")
    TIMINGS.append(("images pushed", time.monotonic() - started))
    secrets = new_secrets()
    cluster.apply(operator_objects(cluster, secrets))
    work = tmp_path_factory.mktemp("chart")
    values = single_node_values(built.images, registry)
    values["weaviate"]["persistence"] = {"storageClassName": STORAGE_CLASS, "size": WEAVIATE_VOLUME}
    values["gateway"]["persistence"] = {"enabled": True, "existingClaim": "holdfast-home"}
    values_path = work / "single-node.yaml"
    values_path.write_text(yaml.safe_dump(values, sort_keys=False))
    inst = Installed(cluster, registry, chart_of(built.revision, work), values_path, built, secrets)
    inst.helm(
        "install", RELEASE, str(inst.chart), "-f", str(values_path),
        "--wait", "--timeout", INSTALL_TIMEOUT,
    )  # fmt: skip
    return inst


def operator_objects(
    cluster: SingleNodeCluster, secrets: dict[str, dict[str, str]]
) -> list[dict[str, Any]]:
    """What the chart expects to exist: the namespace, its Secrets, a StorageClass with a local
    volume for every claim (Weaviate's own claim binds to the one left for it)."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        cluster.storage_class(),
        cluster.local_volume("weaviate-data-0", WEAVIATE_VOLUME, ["ReadWriteOnce"]),
    ]
    for claim, size in CLAIMS.items():
        objects.append(cluster.local_volume(f"{claim}-pv", size, ["ReadWriteOnce"]))
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": NAMESPACE},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": STORAGE_CLASS,
                    "resources": {"requests": {"storage": size}},
                    "volumeName": f"{claim}-pv",
                },
            }
        )
    for name, data in secrets.items():
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "stringData": data,
            }
        )
    return objects


@pytest.fixture(scope="module")
def ingested(installed: Installed) -> Installed:
    admin = installed.secrets["holdfast-api-keys"]["admin-key"]
    installed.auth = ingest_key(installed.url, admin, "cluster-test")
    ingest_document(installed.url, installed.auth)
    return installed


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    yield
    for what, seconds in TIMINGS:
        print(f"{what}: {seconds:.0f} s")


# ------------------------------------------------------------------------------------- tests


def test_every_pod_runs_an_image_from_the_registry_by_its_digest(installed: Installed) -> None:
    listed = installed.cluster.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json")
    pods = json.loads(listed.stdout)
    expected = {image.digest for image in installed.built.images.values()}
    assert pods["items"]
    for pod in pods["items"]:
        name = pod["metadata"]["name"]
        assert pod["status"]["phase"] == "Running", (name, pod["status"])
        specs = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
        for spec in specs:
            assert spec["image"].startswith(installed.registry + "/"), (name, spec["image"])
            assert "@sha256:" in spec["image"], (name, spec["image"])
        statuses = (
            pod["status"].get("initContainerStatuses", []) + pod["status"]["containerStatuses"]
        )
        for status in statuses:
            assert status["imageID"].rsplit("@", 1)[-1] in expected, (name, status["imageID"])
        assert all(s["ready"] for s in pod["status"]["containerStatuses"]), name


def test_helm_test_passes(installed: Installed) -> None:
    done = installed.helm("test", RELEASE, "--timeout", "5m")
    assert "Phase:          Succeeded" in done.stdout, done.stdout


def test_a_cited_answer_through_the_gateway_service(ingested: Installed) -> None:
    body = ask_cited(ingested.url, ingested.auth)
    TIMINGS.append(("cited answer", body["_seconds"]))


def test_upgrade_to_a_second_build_and_rollback_keep_answering(
    ingested: Installed, second_gateway: Image
) -> None:
    first = ingested.built.images["holdfast-gateway"].digest
    assert ingested.gateway_image_ids() == {first}
    push(second_gateway.archive, f"{ingested.registry}/{second_gateway.name}:{second_gateway.tag}")
    ingested.helm(
        "upgrade", RELEASE, str(ingested.chart), "-f", str(ingested.values),
        "--set", f"gateway.image.digest={second_gateway.digest}",
        "--wait", "--timeout", INSTALL_TIMEOUT,
    )  # fmt: skip
    wait_for_gateway_image(ingested, second_gateway.digest)
    ask_cited(ingested.url, ingested.auth)  # the same key and document: state kept
    ingested.helm("rollback", RELEASE, "1", "--wait", "--timeout", INSTALL_TIMEOUT)
    wait_for_gateway_image(ingested, first)
    ask_cited(ingested.url, ingested.auth)
    history = json.loads(ingested.helm("history", RELEASE, "-o", "json").stdout)
    assert [h["status"] for h in history][-1] == "deployed"
    assert len(history) == 3, history


def wait_for_gateway_image(inst: Installed, digest: str, budget_s: float = 300.0) -> None:
    """`helm --wait` returns once the new pods are ready; the old ones may still be going."""
    deadline = time.monotonic() + budget_s
    while inst.gateway_image_ids() != {digest}:
        assert time.monotonic() < deadline, (digest, inst.gateway_image_ids())
        time.sleep(2)
