"""The Helm chart without a cluster (issue #17, "the podman floor"): the four images built from
the HEAD commit, the chart of that same commit rendered for a single-node install that pulls them
from a registry name by their real digests, and every rendered workload run under podman the way
a kubelet would run it; then a document ingested and a cited answer through the gateway's
container port.

What is honoured, read from the rendered objects (nothing about the chart is restated here):
command and args (command replaces the image's entrypoint and drops its command, args alone
replace its command), env with value, configMapKeyRef, secretKeyRef and fieldRef, the Service
environment variables a kubelet injects (enableServiceLinks), volumeMounts (ConfigMap, Secret and
projected volumes as files, emptyDir per pod, PVCs and volumeClaimTemplates as directories shared
by every pod naming the same claim, fsGroup-owned like a kubelet leaves them), the pod and
container securityContext (runAsUser/Group, runAsNonRoot checked against the image's user,
fsGroup, readOnlyRootFilesystem, capabilities, allowPrivilegeEscalation), memory and CPU limits,
init containers first and in order (each must exit 0), and the startup, readiness and liveness
probes, polled as written (httpGet/tcpSocket/exec, the probe's period and timeout; a startup
probe's deadline is its failureThreshold times its period). Stricter than a kubelet: a main
container that exits fails the test with its log instead of being restarted.

One podman pod per rendered pod, not one for them all: a pod is one network namespace, and the
gateway and Weaviate both listen on 8080. The pods share a private bridge network with fixed
addresses and every Service name (short, `.ns`, `.ns.svc`, `.ns.svc.cluster.local`) resolves via
/etc/hosts to the pod its selector picks, as cluster DNS would; only the gateway's port is
published, on 127.0.0.1:29000. All pods start at once, as on a cluster, so the two
models-populate init containers really take turns through the chart's lock.

The Secrets are created as the chart README's `kubectl create secret` lines create them (the chart
never creates credentials). The Kubernetes API itself is absent: no service account token (the
chart mounts none), no `kubernetes` Service variables.

HOLDFAST_TEST_IMAGES_DIR=<a `holdfast images build --out` folder> reuses images built before
(any revision; the test says which) instead of building them; for working on this test only."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.chart_support import (
    HELM,
    NAMESPACE,
    RELEASE,
    Built,
    ask_cited,
    chart_of,
    head_images,
    ingest_document,
    ingest_key,
    new_secrets,
    single_node_values,
)
from tests.integration.podman_support import (
    BUILD_TOOLS,
    RUN_TOOLS,
    Podman,
    apt_install,
    head_revision,
    podman_store,
)

pytestmark = pytest.mark.integration

REGISTRY = "registry.holdfast.test/holdfast"  # a name only: nothing is pulled (--pull never)
GATEWAY_PORT = 29000  # 127.0.0.1:29000 -> the gateway pod's 8080 (this test's range: 29000-29019)
# Wall-clock budget for every pod to be ready; a startup probe may allow more, this test doesn't.
READY_BUDGET_S = 420.0
# Every kind the single-node render holds. A kind not listed fails the test: decide how it runs.
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Pod"}
CONFIG_KINDS = {"ConfigMap", "Secret", "Service", "ServiceAccount"}
# Rendered workloads this test does not run, with the reason; none at present (the helm test Pod
# runs last, after the install is ready, as `helm test` would run it).
SKIPPED: dict[str, str] = {}


@dataclass
class Rendered:
    objects: list[dict[str, Any]]
    values: Path

    def of_kind(self, *kinds: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in kinds]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert found, f"the pod references {kind} {name}, which neither the chart nor the test made"
        return found[0]


@dataclass
class PodPlan:
    """One rendered pod: its spec, the workload it comes from, its address."""

    name: str
    workload: str
    kind: str
    labels: dict[str, str]
    annotations: dict[str, str]
    spec: dict[str, Any]
    ip: str
    claims: dict[str, str] = field(default_factory=dict)  # volumeClaimTemplate -> claim name

    @property
    def podman_name(self) -> str:
        return f"hfc-{self.name}"

    def container_name(self, container: str) -> str:
        return f"{self.podman_name}-{container}"


@dataclass
class Cluster:
    podman: Podman
    root: Path
    rendered: Rendered
    secrets: dict[str, dict[str, str]]
    network: str
    plans: list[PodPlan]
    hosts: dict[str, str]
    service_env: dict[str, str]
    published: dict[str, str]  # pod name -> podman -p argument
    image_users: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{GATEWAY_PORT}"

    def plan(self, workload: str) -> PodPlan:
        return next(p for p in self.plans if p.workload == workload)

    def note(self, line: str) -> None:
        self.log.append(f"[{time.strftime('%H:%M:%S')}] {line}")
        print(self.log[-1], flush=True)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if os.geteuid() != 0:
        pytest.fail("the image build and podman's bridge network need root")
    apt_install("test_chart_podman", *BUILD_TOOLS, *RUN_TOOLS)
    return head_images(tmp_path_factory.mktemp("images"), head_revision())


@pytest.fixture(scope="module")
def rendered(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The chart of the images' own commit, rendered for one node."""
    root = tmp_path_factory.mktemp("chart")
    chart = chart_of(built.revision, root)
    values = single_node_values(built.images, REGISTRY)
    values["networkPolicy"] = {"enabled": False}  # no CNI policy engine under podman
    path = root / "single-node.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    template = subprocess.run(
        [str(HELM), "template", RELEASE, str(chart), "-n", NAMESPACE, "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert template.returncode == 0, template.stderr[-3000:]
    objects = [o for o in yaml.safe_load_all(template.stdout) if o]
    kinds = {o["kind"] for o in objects}
    assert kinds <= WORKLOAD_KINDS | CONFIG_KINDS, f"kinds this test does not run: {kinds}"
    return Rendered(objects, path)


@pytest.fixture(scope="module")
def cluster(
    built: Built, rendered: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("podman-chart")
    with podman_store(root / "podman") as podman:
        # a network of its own (in the host's CNI folder, where podman picks a free bridge
        # name), removed below
        network = f"hfc-{secrets.token_hex(4)}"
        subnet = free_subnet()
        try:
            started = time.monotonic()
            for image in built.images.values():
                image_id = podman.load(image.archive)
                podman.run("tag", image_id, f"{REGISTRY}/{image.name}:{image.tag}")
            print(f"images loaded in {time.monotonic() - started:.0f} s")
            podman.run(
                "network",
                "create",
                "--subnet",
                f"{subnet}.0/24",
                network,
            )
            c = plan_cluster(podman, root, rendered, network, subnet)
            yield c
        finally:
            podman.run("pod", "rm", "--all", "--force", "--time", "5", timeout=300, check=False)
            podman.run("network", "rm", "--force", network, timeout=120, check=False)
            shutil.rmtree(root / "volumes", ignore_errors=True)


def free_subnet() -> str:
    """A 10.89.x.0/24 no route of this host uses yet (other tests' podman networks)."""
    routes = subprocess.run(
        ["ip", "-4", "route"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    octets = [o for o in range(100, 251) if f"10.89.{o}." not in routes]
    return f"10.89.{random.Random().choice(octets)}"


@pytest.fixture(scope="module")
def running(cluster: Cluster) -> Cluster:
    """Every pod started at once, as on a cluster; each waits for its own probes."""
    started = time.monotonic()
    deadline = started + READY_BUDGET_S
    pods = [p for p in cluster.plans if p.kind != "Pod"]
    with ThreadPoolExecutor(max_workers=len(pods)) as pool:
        futures = [pool.submit(start_pod, cluster, plan, deadline) for plan in pods]
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as exc:  # collected: every pod's failure is reported below
                errors.append(exc)
    if errors:
        raise AssertionError(
            "; ".join(str(e) for e in errors) + "\n" + logs_of_all(cluster)
        ) from errors[0]
    cluster.note(f"every pod ready after {time.monotonic() - started:.0f} s")
    return cluster


# ------------------------------------------------------------------------------ the plan


def plan_cluster(
    podman: Podman, root: Path, rendered: Rendered, network: str, subnet: str
) -> Cluster:
    plans: list[PodPlan] = []
    for index, obj in enumerate(rendered.of_kind(*WORKLOAD_KINDS), start=10):
        name = obj["metadata"]["name"]
        if name in SKIPPED:
            continue
        kind = obj["kind"]
        ip = f"{subnet}.{index}"
        if kind == "Pod":
            meta, spec = obj["metadata"], obj["spec"]
            plans.append(
                PodPlan(
                    name, name, kind, meta.get("labels", {}), meta.get("annotations", {}), spec, ip
                )
            )
            continue
        # the single-node profile: one pod per workload
        assert obj["spec"].get("replicas", 1) == 1, f"{kind} {name}: more than one replica"
        template = obj["spec"]["template"]
        pod = f"{name}-0"  # a StatefulSet's first pod; any name does for a Deployment's
        claims = {
            t["metadata"]["name"]: f"{t['metadata']['name']}-{pod}"
            for t in obj["spec"].get("volumeClaimTemplates", [])
        }
        meta = template["metadata"]
        plans.append(
            PodPlan(
                pod,
                name,
                kind,
                meta.get("labels", {}),
                meta.get("annotations", {}),
                template["spec"],
                ip,
                claims,
            )
        )
    assert {p.workload for p in plans} | set(SKIPPED) == {
        o["metadata"]["name"] for o in rendered.of_kind(*WORKLOAD_KINDS)
    }
    fits_this_node([p for p in plans if p.kind != "Pod"])
    for plan in plans:  # there is no API server here to hand out a token
        assert plan.spec.get("automountServiceAccountToken") is False, plan.name
    hosts: dict[str, str] = {}
    service_env: dict[str, str] = {}
    published: dict[str, str] = {}
    for service in rendered.of_kind("Service"):
        name = service["metadata"]["name"]
        spec = service["spec"]
        backends = [
            p
            for p in plans
            if p.kind != "Pod"
            and all(p.labels.get(k) == v for k, v in spec.get("selector", {}).items())
        ]
        assert len(backends) == 1, f"Service {name} selects {[b.name for b in backends]}"
        backend = backends[0]
        for port in spec["ports"]:
            # a Service port here is the pod's own: /etc/hosts can rename, not re-map ports
            target = resolve_port(backend, port.get("targetPort", port["port"]))
            assert target == port["port"], f"Service {name}: port {port['port']} -> {target}"
        for alias in (name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc"):
            hosts[alias] = backend.ip
        hosts[f"{name}.{NAMESPACE}.svc.cluster.local"] = backend.ip
        if spec.get("clusterIP") == "None":
            # a headless Service names each pod: <pod>.<service>.<ns>.svc
            hosts[f"{backend.name}.{name}.{NAMESPACE}.svc"] = backend.ip
            continue  # and gets no environment variables
        service_env.update(service_links(name, backend.ip, spec["ports"]))
        if backend.labels.get("app.kubernetes.io/component") == "gateway":
            published[backend.name] = f"127.0.0.1:{GATEWAY_PORT}:{spec['ports'][0]['port']}"
    for plan in plans:  # a StatefulSet pod's own name resolves, as in its /etc/hosts
        hosts.setdefault(plan.name, plan.ip)
    cluster_secrets = new_secrets()
    for obj in rendered.of_kind("Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        data.update(obj.get("stringData") or {})
        cluster_secrets[obj["metadata"]["name"]] = data
    c = Cluster(
        podman, root, rendered, cluster_secrets, network, plans, hosts, service_env, published
    )
    for image in {ctr["image"] for plan in plans for ctr in containers_of(plan)}:
        # --pull never below: an image missing from the store fails, nothing is fetched
        user = podman.run("image", "inspect", "--format", "{{.Config.User}}", image).stdout
        c.image_users[image] = user.strip()
    return c


def fits_this_node(plans: list[PodPlan]) -> None:
    """What a scheduler checks first: the pods' requests fit the node (a pod asks for the larger
    of its containers' sum and its biggest init container)."""
    cpu, memory = 0.0, 0
    for plan in plans:

        def asked(ctrs: list[dict[str, Any]]) -> list[tuple[float, int]]:
            requests = [(c.get("resources") or {}).get("requests") or {} for c in ctrs]
            return [
                (cpu_quantity(str(r.get("cpu", "0"))), quantity_bytes(str(r.get("memory", "0"))))
                for r in requests
            ]

        main = asked(plan.spec["containers"])
        init = asked(plan.spec.get("initContainers", []))
        cpu += max([sum(c for c, _ in main), *(c for c, _ in init)])
        memory += max([sum(m for _, m in main), *(m for _, m in init)])
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert cpu <= (os.cpu_count() or 1), f"the pods request {cpu} CPUs"
    assert memory <= total, f"the pods request {memory} bytes of memory, this node has {total}"
    for plan in plans:
        for ctr in containers_of(plan):
            limit = ((ctr.get("resources") or {}).get("limits") or {}).get("cpu")
            assert limit is None or cpu_quantity(str(limit)) <= (os.cpu_count() or 1), (
                f"{plan.name}/{ctr['name']}: a CPU limit above this node's {os.cpu_count()}"
            )


def containers_of(plan: PodPlan) -> list[dict[str, Any]]:
    return [*plan.spec.get("initContainers", []), *plan.spec["containers"]]


def resolve_port(plan: PodPlan, port: int | str) -> int:
    if isinstance(port, int):
        return port
    for ctr in plan.spec["containers"]:
        for p in ctr.get("ports", []):
            if p.get("name") == port:
                return int(p["containerPort"])
    raise AssertionError(f"pod {plan.name} has no port named {port}")


def service_links(name: str, ip: str, ports: list[dict[str, Any]]) -> dict[str, str]:
    """The variables a kubelet sets in every pod for each Service (enableServiceLinks)."""
    prefix = name.upper().replace("-", "_")
    first = ports[0]
    env = {
        f"{prefix}_SERVICE_HOST": ip,
        f"{prefix}_SERVICE_PORT": str(first["port"]),
        f"{prefix}_PORT": f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}",
    }
    for port in ports:
        proto = port.get("protocol", "TCP")
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(
                port["port"]
            )
        key = f"{prefix}_PORT_{port['port']}_{proto}"
        env[key] = f"{proto.lower()}://{ip}:{port['port']}"
        env[f"{key}_PROTO"] = proto.lower()
        env[f"{key}_PORT"] = str(port["port"])
        env[f"{key}_ADDR"] = ip
    return env


# ------------------------------------------------------------------------- running a pod


def start_pod(c: Cluster, plan: PodPlan, deadline: float) -> None:
    c.podman.run(*pod_create_args(c, plan))
    c.podman.run("pod", "start", plan.podman_name)
    for ctr in plan.spec.get("initContainers", []):
        started = time.monotonic()
        c.note(f"{plan.name}: init container {ctr['name']}")
        ran = c.podman.run(
            *run_args(c, plan, ctr), timeout=max(deadline - time.monotonic(), 30), check=False
        )
        assert ran.returncode == 0, (
            f"{plan.name}: init container {ctr['name']} exited {ran.returncode}: "
            f"{(ran.stdout + ran.stderr)[-3000:]}"
        )
        c.note(
            f"{plan.name}: {ctr['name']} done in {time.monotonic() - started:.0f} s: "
            f"{ran.stdout.strip().splitlines()[-1:]}"
        )
    for ctr in plan.spec["containers"]:
        c.podman.run(*run_args(c, plan, ctr, detach=True))
    for ctr in plan.spec["containers"]:
        if "startupProbe" in ctr:
            wait_probe(c, plan, ctr, "startupProbe", deadline)
        if "readinessProbe" in ctr:
            wait_probe(c, plan, ctr, "readinessProbe", deadline)
        c.note(f"{plan.name}/{ctr['name']}: ready")


def pod_create_args(c: Cluster, plan: PodPlan) -> list[str]:
    """The pod's network namespace: its own address on the bridge, every Service by name."""
    args = ["pod", "create", "--name", plan.podman_name, "--hostname", plan.name]
    args += ["--network", c.network, "--ip", plan.ip]
    for host, ip in sorted(c.hosts.items()):
        if host != plan.name:  # podman maps the pod's own hostname itself
            args += ["--add-host", f"{host}:{ip}"]
    if plan.name in c.published:
        args += ["--publish", c.published[plan.name]]
    return args


def run_args(c: Cluster, plan: PodPlan, ctr: dict[str, Any], detach: bool = False) -> list[str]:
    pod_sc = plan.spec.get("securityContext") or {}
    sc = {**pod_sc, **(ctr.get("securityContext") or {})}
    args = ["run", "--pod", plan.podman_name, "--name", plan.container_name(ctr["name"])]
    args += ["--pull", "never", "--detach" if detach else "--rm"]
    # the user: runAsUser/runAsGroup, else the image's; runAsNonRoot refuses root as a kubelet does
    image_user = c.image_users[ctr["image"]]
    uid = str(sc["runAsUser"]) if sc.get("runAsUser") is not None else image_user.split(":")[0]
    gid = sc.get("runAsGroup")
    if sc.get("runAsNonRoot"):
        assert uid.isdigit() and uid != "0", (
            f"{plan.name}/{ctr['name']}: runAsNonRoot, but the user would be {uid!r} "
            "(a kubelet refuses to start it)"
        )
    args += ["--user", f"{uid}:{gid}" if gid is not None else uid]
    if pod_sc.get("fsGroup") is not None:
        args += ["--group-add", str(pod_sc["fsGroup"])]
    for group in pod_sc.get("supplementalGroups") or []:
        args += ["--group-add", str(group)]
    if sc.get("readOnlyRootFilesystem"):
        # no tmpfs on /tmp, /run, /var/tmp: a kubelet adds none either
        args += ["--read-only", "--read-only-tmpfs=false"]
    caps = sc.get("capabilities") or {}
    for cap in caps.get("drop") or []:
        args += ["--cap-drop", cap.lower()]
    for cap in caps.get("add") or []:
        args += ["--cap-add", cap.lower()]
    if sc.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    limits = (ctr.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        args += ["--memory", str(quantity_bytes(str(limits["memory"])))]
    if "cpu" in limits:
        args += ["--cpus", str(cpu_quantity(str(limits["cpu"])))]
    for name, value in container_env(c, plan, ctr).items():
        args += ["--env", f"{name}={value}"]
    for mount in ctr.get("volumeMounts", []):
        source, volume_ro = volume_source(c, plan, mount["name"])
        if mount.get("subPath"):
            source = source / mount["subPath"]
        ro = "true" if mount.get("readOnly") or volume_ro else "false"
        args += ["--mount", f"type=bind,src={source},dst={mount['mountPath']},ro={ro}"]
    if ctr.get("workingDir"):
        args += ["--workdir", ctr["workingDir"]]
    command, cmd_args = ctr.get("command"), ctr.get("args")
    if command:
        # command replaces the image's entrypoint and its command; args follow
        args += ["--entrypoint", json.dumps(command), ctr["image"], *(cmd_args or [])]
    else:
        args += [ctr["image"], *(cmd_args or [])]
    return args


def container_env(c: Cluster, plan: PodPlan, ctr: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    if plan.spec.get("enableServiceLinks", True):
        env.update(c.service_env)
    for var in ctr.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var["valueFrom"]
        if "configMapKeyRef" in ref:
            r = ref["configMapKeyRef"]
            env[var["name"]] = c.rendered.named("ConfigMap", r["name"])["data"][r["key"]]
        elif "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            assert r["name"] in c.secrets, f"{plan.name}: no Secret {r['name']}"
            assert r["key"] in c.secrets[r["name"]], f"{plan.name}: no key {r['key']}"
            env[var["name"]] = c.secrets[r["name"]][r["key"]]
        elif "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            fields = {
                "metadata.name": plan.name,
                "metadata.namespace": NAMESPACE,
                "status.podIP": plan.ip,
                "spec.nodeName": socket.gethostname(),
            }
            assert path in fields, f"{plan.name}: fieldRef {path} not supported here"
            env[var["name"]] = fields[path]
        else:
            raise AssertionError(f"{plan.name}: env {var['name']}: {ref} not supported here")
    return env


def volume_source(c: Cluster, plan: PodPlan, name: str) -> tuple[Path, bool]:
    """The host directory behind a pod's volume (made on first use) and whether the volume
    itself is read-only."""
    volumes = {v["name"]: v for v in plan.spec.get("volumes", [])}
    fs_group = (plan.spec.get("securityContext") or {}).get("fsGroup")
    base = c.root / "volumes"
    if name in plan.claims and name not in volumes:
        return claim_dir(base / "claims" / plan.claims[name], fs_group), False
    assert name in volumes, f"{plan.name}: volume {name} is mounted but not declared"
    volume = volumes[name]
    path = base / "pods" / plan.name / name
    if "emptyDir" in volume:
        if not path.exists():
            path.mkdir(parents=True)
            path.chmod(0o777)  # a kubelet's emptyDir is world-writable
        return path, False
    if "persistentVolumeClaim" in volume:
        claim = volume["persistentVolumeClaim"]
        return claim_dir(base / "claims" / claim["claimName"], fs_group), bool(
            claim.get("readOnly")
        )
    if "hostPath" in volume:
        host = base / "host" / volume["hostPath"]["path"].lstrip("/")
        host.mkdir(parents=True, exist_ok=True)
        return host, False
    if not path.exists():
        path.mkdir(parents=True)
        if "configMap" in volume:
            write_source(c, path, "ConfigMap", volume["configMap"])
        elif "secret" in volume:
            write_source(
                c, path, "Secret", {**volume["secret"], "name": volume["secret"]["secretName"]}
            )
        elif "projected" in volume:
            for source in volume["projected"]["sources"]:
                ((kind, ref),) = source.items()
                write_source(c, path, {"configMap": "ConfigMap", "secret": "Secret"}[kind], ref)
        else:
            raise AssertionError(f"{plan.name}: volume {name}: {volume} not supported here")
    return path, True  # ConfigMap and Secret volumes are read-only


def claim_dir(path: Path, fs_group: int | None) -> Path:
    """A claim's directory, shared by every pod that names it; with fsGroup, group-owned and
    setgid as a kubelet leaves a volume it supports ownership management for."""
    if not path.exists():
        path.mkdir(parents=True)
        if fs_group is not None:
            os.chown(path, 0, fs_group)
            path.chmod(0o2775)
    return path


def write_source(c: Cluster, path: Path, kind: str, ref: dict[str, Any]) -> None:
    if kind == "ConfigMap":
        data = dict(c.rendered.named("ConfigMap", ref["name"]).get("data") or {})
    else:
        assert ref["name"] in c.secrets, f"no Secret {ref['name']}"
        data = c.secrets[ref["name"]]
    items = ref.get("items") or [{"key": k, "path": k} for k in data]
    for item in items:
        target = path / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(data[item["key"]])
        target.chmod(item.get("mode", ref.get("defaultMode", 0o644)))


def quantity_bytes(text: str) -> int:
    units = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match and match.group(2) in units, f"memory quantity {text!r}"
    return int(float(match.group(1)) * units[match.group(2)])


def cpu_quantity(text: str) -> float:
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


# ---------------------------------------------------------------------------------- probes


def wait_probe(c: Cluster, plan: PodPlan, ctr: dict[str, Any], which: str, deadline: float) -> None:
    """Poll the probe as a kubelet would: after its initial delay, every period, each try within
    its timeout; a startup probe fails after failureThreshold tries, a readiness probe is polled
    until the test's budget ends. A container that exits fails at once, with its log."""
    probe = ctr[which]
    period = float(probe.get("periodSeconds", 10))
    start = time.monotonic()
    if which == "startupProbe":
        own = (
            start + probe.get("initialDelaySeconds", 0) + period * probe.get("failureThreshold", 3)
        )
        deadline = min(deadline, own)
    time.sleep(probe.get("initialDelaySeconds", 0))
    tries = 0
    while True:
        tries += 1
        if probe_once(c, plan, ctr, probe):
            c.note(
                f"{plan.name}/{ctr['name']}: {which} passed after {time.monotonic() - start:.0f} s"
            )
            return
        state = c.podman.run(
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            plan.container_name(ctr["name"]),
            check=False,
        ).stdout.strip()
        if not state.startswith("running"):
            raise AssertionError(
                f"{plan.name}/{ctr['name']} is {state!r} during its {which}: "
                + container_log(c, plan.container_name(ctr["name"]))
            )
        if time.monotonic() + period > deadline:
            raise AssertionError(
                f"{plan.name}/{ctr['name']}: {which} {probe} failed {tries} times in "
                f"{time.monotonic() - start:.0f} s: "
                + container_log(c, plan.container_name(ctr["name"]))
            )
        time.sleep(period)


def probe_once(c: Cluster, plan: PodPlan, ctr: dict[str, Any], probe: dict[str, Any]) -> bool:
    timeout = float(probe.get("timeoutSeconds", 1))
    if "httpGet" in probe:
        get = probe["httpGet"]
        port = resolve_port(plan, get["port"])
        url = f"{get.get('scheme', 'HTTP').lower()}://{get.get('host', plan.ip)}:{port}"
        headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
        try:
            response = httpx.get(
                url + get.get("path", "/"), headers=headers, timeout=timeout, verify=False
            )
        except httpx.HTTPError:
            return False
        return 200 <= response.status_code < 400
    if "tcpSocket" in probe:
        try:
            port = resolve_port(plan, probe["tcpSocket"]["port"])
            with socket.create_connection((plan.ip, port), timeout=timeout):
                return True
        except OSError:
            return False
    if "exec" in probe:
        try:
            ran = c.podman.run(
                "exec",
                plan.container_name(ctr["name"]),
                *probe["exec"]["command"],
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return ran.returncode == 0
    raise AssertionError(f"{plan.name}/{ctr['name']}: probe {probe} not supported here")


def container_log(c: Cluster, name: str) -> str:
    logs = c.podman.run("logs", "--tail", "60", name, check=False)
    return f"\n--- {name} ---\n" + (logs.stdout + logs.stderr)[-4000:]


def logs_of_all(c: Cluster) -> str:
    names = c.podman.run("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    return "".join(container_log(c, n) for n in names if n.startswith("hfc-"))


# ----------------------------------------------------------------------------------- tests


def test_every_rendered_pod_starts_and_passes_its_probes(running: Cluster) -> None:
    for plan in running.plans:
        if plan.kind == "Pod":
            continue
        for ctr in plan.spec["containers"]:
            if "livenessProbe" in ctr:
                assert probe_once(running, plan, ctr, ctr["livenessProbe"]), (
                    f"{plan.name}/{ctr['name']}: liveness probe fails after ready"
                )
    # the store was filled once (the other pod's populate found the marker, or waited on the
    # lock), from the models image pinned by digest, and Ollama's import landed in it
    store = running.root / "volumes" / "claims" / "holdfast-models"
    models = running.rendered.named("Deployment", f"{RELEASE}-gateway")
    populate = models["spec"]["template"]["spec"]["initContainers"][0]
    assert (store / ".holdfast-models").read_text().strip() == populate["image"].split("@")[1]
    assert list((store / "chat").glob("*.gguf")) and (store / "all-minilm-l6-v2").is_dir()
    assert (store / "ollama" / ".holdfast-qwen2.5-coder-0.5b.Modelfile").is_file()
    assert not (store / ".holdfast-models.lock").exists()


def test_containers_run_as_their_security_context_says(running: Cluster) -> None:
    for plan in running.plans:
        if plan.kind == "Pod":
            continue
        pod_sc = plan.spec.get("securityContext") or {}
        for ctr in plan.spec["containers"]:
            sc = {**pod_sc, **(ctr.get("securityContext") or {})}
            (info,) = json.loads(
                running.podman.run("inspect", plan.container_name(ctr["name"])).stdout
            )
            where = f"{plan.name}/{ctr['name']}"
            assert info["State"]["Running"], where
            assert info["Config"]["User"] == f"{sc['runAsUser']}:{sc['runAsGroup']}", where
            host = info["HostConfig"]
            assert host["ReadonlyRootfs"] is bool(sc.get("readOnlyRootFilesystem")), where
            assert host["Memory"] == quantity_bytes(ctr["resources"]["limits"]["memory"]), where
            if "ALL" in (sc.get("capabilities") or {}).get("drop", []):
                assert not info["EffectiveCaps"], where
            if sc.get("allowPrivilegeEscalation") is False:
                assert "no-new-privileges" in host["SecurityOpt"], where
    gateway = running.plan(f"{RELEASE}-gateway")
    probe = (
        "import os\n"
        "print(os.getuid(), os.getgid(), 10001 in os.getgroups())\n"
        "try:\n    open('/probe', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
    )
    ran = running.podman.run(
        "exec", gateway.container_name("gateway"), "python", "-c", probe, timeout=60
    )
    assert ran.stdout.split() == ["10001", "10001", "True", "30"]  # 30: EROFS


def test_helm_test_pod_passes(running: Cluster) -> None:
    (plan,) = [p for p in running.plans if p.kind == "Pod"]
    assert plan.annotations.get("helm.sh/hook") == "test"
    assert plan.spec.get("restartPolicy") == "Never"
    running.podman.run(*pod_create_args(running, plan))
    (ctr,) = plan.spec["containers"]
    ran = running.podman.run(*run_args(running, plan, ctr), timeout=180, check=False)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    assert ran.stdout.strip().endswith("ok"), ran.stdout


def test_a_document_ingested_and_a_cited_answer_through_the_gateway_port(
    running: Cluster,
) -> None:
    admin = running.secrets["holdfast-api-keys"]["admin-key"]
    auth = ingest_key(running.url, admin, "podman-floor")
    ingest_document(running.url, auth)
    body = ask_cited(running.url, auth)
    running.note(f"answered in {body['_seconds']:.1f} s")
