"""A real single-node Kubernetes cluster on this machine, for the test that installs the Helm chart
on one (test_chart_cluster.py): etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kubelet, kube-proxy and CoreDNS built from their Go modules by scripts/install-kubernetes.sh, with
containerd, runc and the CNI bridge plugin from Debian. No image from a public registry: the pod
sandbox ("pause") image is made here from Debian's static catatonit, and every other image comes
from the registry the caller names (plain HTTP on loopback, through containerd's hosts.toml).

Everything lives under one short root folder (unix sockets allow 108 bytes): certificates,
etcd's data, containerd's store and state, the kubelet's folder, the CNI config and its address
leases. Ports come from one base (see `Ports`); the bridge is `hfkube0` on 10.244.0.0/24, the
Service range 10.96.0.0/16, and CoreDNS answers for cluster.local on the node's address, port 53
(a pod's resolv.conf cannot name a port). Control-plane components and the kubelet use one admin
token (group system:masters): the node's own authorisation is not under test here.

`stop()` leaves the machine as it found it: it removes the release's pods through the API first,
then kills every process and container shim it started, unmounts what they mounted, deletes the
bridge and kube-proxy's iptables rules."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from gateway.images import oci
from gateway.images.spec import rfc3339

NODE = "holdfast-node"
POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_RANGE = "10.96.0.0/16"
BRIDGE = "hfkube0"
PAUSE_IMAGE = "holdfast/pause"
STORAGE_CLASS = "holdfast-local"


@dataclass(frozen=True)
class Ports:
    """Every port the cluster listens on, from one base (20 in all)."""

    base: int

    @property
    def apiserver(self) -> int:
        return self.base

    @property
    def etcd(self) -> int:
        return self.base + 1

    @property
    def etcd_peer(self) -> int:
        return self.base + 2

    @property
    def kubelet(self) -> int:
        return self.base + 3

    @property
    def kubelet_healthz(self) -> int:
        return self.base + 4

    @property
    def controller_manager(self) -> int:
        return self.base + 5

    @property
    def scheduler(self) -> int:
        return self.base + 6

    @property
    def proxy_metrics(self) -> int:
        return self.base + 7

    @property
    def proxy_healthz(self) -> int:
        return self.base + 8

    @property
    def stream(self) -> int:
        return self.base + 9

    @property
    def dns_ready(self) -> int:
        return self.base + 10


class ClusterError(AssertionError):
    """A component did not come up; the message carries the tail of its log."""


def node_address() -> str:
    """The node's IPv4 address: the source of its default route (pods reach it via the bridge)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.123", 9))  # no packet is sent: this only picks a route
        return str(probe.getsockname()[0])
    finally:
        probe.close()


def pause_image(work: Path, epoch: int) -> Path:
    """The pod sandbox image, made here: Debian's static catatonit in pause mode (`-P`), as
    podman makes its pod infra image; one layer, an OCI archive."""
    layout, tree = work / "pause-oci", work / "pause-root"
    tree.mkdir(parents=True, exist_ok=True)
    shutil.copy2("/usr/bin/catatonit", tree / "catatonit")
    oci.new_image(layout, "1", epoch)
    oci.insert(layout, "1", tree, "/", epoch)
    oci.umoci(
        "config",
        "--image",
        f"{layout}:1",
        "--no-history",
        "--created",
        rfc3339(epoch),
        "--config.user",
        "65535:65535",
        "--config.entrypoint",
        "/catatonit",
        "--config.cmd",
        "-P",
    )
    archive = work / "pause.oci.tar"
    oci.write_archive(layout, "1", "1", archive, epoch)
    return archive


def remove_kube_chains() -> None:
    """The KUBE-* chains the kubelet and kube-proxy leave (`kube-proxy --cleanup` keeps their
    canaries and KUBE-MARK-MASQ), with every rule that jumps to them."""
    for command in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listed = subprocess.run(
                [command, "-t", table, "-S"], capture_output=True, text=True, check=False
            ).stdout.splitlines()
            for rule in listed:
                if rule.startswith("-A ") and "KUBE-" in rule and not rule.startswith("-A KUBE-"):
                    args = ["-D", *shlex.split(rule)[1:]]
                    subprocess.run([command, "-t", table, *args], capture_output=True, check=False)
            for rule in listed:
                if rule.startswith("-N KUBE-"):
                    chain = rule.split()[1]
                    for flag in ("-F", "-X"):
                        subprocess.run(
                            [command, "-t", table, flag, chain], capture_output=True, check=False
                        )


@dataclass
class SingleNodeCluster:
    root: Path
    bin_dir: Path
    ports: Ports
    registry_host: str  # host:port of the plain-HTTP registry the images come from
    node_ip: str = field(default_factory=node_address)
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    timings: list[tuple[str, float]] = field(default_factory=list)

    # ------------------------------------------------------------------------------ paths

    @property
    def kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def containerd_socket(self) -> Path:
        return self.root / "containerd" / "containerd.sock"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def log_path(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    # ---------------------------------------------------------------------------- start

    def start(self, budget_s: float = 300.0) -> None:
        """Bring every component up in order; each waits for the one it needs."""
        deadline = time.monotonic() + budget_s
        started = time.monotonic()
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self._write_pki()
        self._write_kubeconfig()
        self._spawn("etcd", self._etcd_args())
        self._wait(
            "etcd", deadline, lambda: self._http_ok(f"http://127.0.0.1:{self.ports.etcd}/health")
        )
        self._spawn("kube-apiserver", self._apiserver_args())
        self._wait(
            "kube-apiserver",
            deadline,
            lambda: self._http_ok(f"https://127.0.0.1:{self.ports.apiserver}/readyz"),
        )
        self._spawn("kube-controller-manager", self._controller_manager_args())
        self._spawn("kube-scheduler", self._scheduler_args())
        self._write_containerd_config()
        self._spawn(
            "containerd",
            ["containerd", "--config", str(self.root / "containerd" / "config.toml")],
        )
        self._wait("containerd", deadline, self.containerd_socket.exists)
        self._spawn("kube-proxy", self._proxy_args())
        self._wait(
            "kube-proxy",
            deadline,
            lambda: self._http_ok(f"http://127.0.0.1:{self.ports.proxy_healthz}/healthz"),
        )
        self._write_corefile()
        self._spawn("coredns", ["coredns", "-conf", str(self.root / "Corefile")])
        self._wait(
            "coredns",
            deadline,
            lambda: self._http_ok(f"http://127.0.0.1:{self.ports.dns_ready}/ready"),
        )
        self._spawn("kubelet", self._kubelet_args())
        self._wait("kubelet", deadline, self._node_ready)
        self.timings.append(("cluster up", time.monotonic() - started))

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        program = args[0]
        path = self.bin_dir / program
        command = [str(path) if path.is_file() else program, *args[1:]]
        log = self.log_path(name).open("ab")
        self.processes[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self.env
        )

    def _wait(self, name: str, deadline: float, ready: Callable[[], bool]) -> None:
        while time.monotonic() < deadline:
            proc = self.processes[name]
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited {proc.returncode}:\n{self.tail(name)}")
            try:
                if ready():
                    return
            except (OSError, subprocess.SubprocessError, ValueError, httpx.HTTPError):
                pass
            time.sleep(1)
        raise ClusterError(f"{name} not ready in time:\n{self.tail(name)}")

    def _http_ok(self, url: str) -> bool:
        response = httpx.get(
            url,
            headers={"Authorization": f"Bearer {self.token}"},
            verify=ssl.create_default_context(cafile=str(self.root / "pki" / "ca.crt")),
            timeout=5.0,
        )
        return response.status_code == 200

    def _node_ready(self) -> bool:
        got = self.kubectl("get", "node", NODE, "-o", "json", check=False, timeout=20)
        if got.returncode != 0:
            return False
        conditions = json.loads(got.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        if not path.is_file():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    # ------------------------------------------------------------------------- commands

    def kubectl(
        self, *args: str, timeout: float = 120.0, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            capture_output=True,
            text=True,
            input=stdin,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args[:4])} … exited {done.returncode}: {done.stderr[-2000:]}"
            )
        return done

    def describe_failures(self, namespace: str) -> str:
        """Pods, recent events and the logs of containers not ready: for a failure message."""
        parts = [
            self.kubectl("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout,
            self.kubectl(
                "get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False
            ).stdout[-4000:],
        ]
        pods = self.kubectl("get", "pods", "-n", namespace, "-o", "json", check=False).stdout
        for pod in json.loads(pods or '{"items": []}')["items"]:
            statuses = pod["status"].get("initContainerStatuses", []) + pod["status"].get(
                "containerStatuses", []
            )
            for status in statuses:
                if not status.get("ready"):
                    name = pod["metadata"]["name"]
                    log = self.kubectl(
                        "logs",
                        "-n",
                        namespace,
                        name,
                        "-c",
                        status["name"],
                        "--tail=30",
                        check=False,
                    )
                    parts.append(f"--- {name}/{status['name']}\n{log.stdout}{log.stderr}")
        return "\n".join(parts)

    def apply(self, objects: Sequence[dict[str, object]]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def local_volume(self, name: str, size: str, access_modes: Sequence[str]) -> dict[str, object]:
        """A `local` PersistentVolume in a folder of the root (the class has no provisioner)."""
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": list(access_modes),
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": STORAGE_CLASS,
                "local": {"path": str(path)},
                "nodeAffinity": {
                    "required": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/hostname",
                                        "operator": "In",
                                        "values": [NODE],
                                    }
                                ]
                            }
                        ]
                    }
                },
            },
        }

    @staticmethod
    def storage_class() -> dict[str, object]:
        return {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": STORAGE_CLASS},
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "WaitForFirstConsumer",
        }

    # ----------------------------------------------------------------------------- stop

    def stop(self, namespaces: Sequence[str] = ()) -> None:
        """Pods removed through the API (their containers stopped by the kubelet), then every
        process killed and what they left behind removed; never raises."""
        if "kubelet" in self.processes and self.processes["kubelet"].poll() is None:
            for namespace in namespaces:
                self.kubectl(
                    "delete",
                    "namespace",
                    namespace,
                    "--wait=true",
                    "--timeout=90s",
                    check=False,
                    timeout=120,
                )
        for name in reversed(list(self.processes)):
            self._terminate(self.processes[name])
        socket_path = str(self.containerd_socket)
        # container shims outlive containerd; each names its containerd's socket
        subprocess.run(["pkill", "-9", "-f", f"containerd-shim.*{socket_path}"], check=False)
        subprocess.run(["pkill", "-9", "-f", f"{self.root}/"], check=False)
        self._unmount_all()
        subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True, check=False)
        proxy = self.bin_dir / "kube-proxy"
        if proxy.is_file():
            subprocess.run([str(proxy), "--cleanup"], capture_output=True, check=False, timeout=60)
        remove_kube_chains()
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass

    def _unmount_all(self) -> None:
        root = str(self.root) + "/"
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(root)
        ]
        for target in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        # network namespaces the CNI made for the pods (containerd names them cni-<uuid>)
        netns = Path("/var/run/netns")
        for item in netns.glob("cni-*") if netns.is_dir() else []:
            subprocess.run(["ip", "netns", "delete", item.name], capture_output=True, check=False)

    # --------------------------------------------------------------------- configuration

    def _write_pki(self) -> None:
        pki = self.root / "pki"
        pki.mkdir(parents=True, exist_ok=True)

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=pki, capture_output=True, check=True, timeout=60)

        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=holdfast-test-cluster-ca",
        )
        names = [
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "DNS:localhost",
            "IP:127.0.0.1",
            f"IP:{self.node_ip}",
            "IP:10.96.0.1",
        ]
        (pki / "san.ext").write_text(f"subjectAltName={','.join(names)}\n")
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "apiserver.key",
            "-out",
            "apiserver.csr",
            "-subj",
            "/CN=kube-apiserver",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "apiserver.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        )
        openssl("genrsa", "-out", "sa.key", "2048")
        openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        (pki / "tokens.csv").write_text(f'{self.token},holdfast-admin,1,"system:masters"\n')

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "holdfast-test",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.ports.apiserver}",
                        "certificate-authority": str(self.root / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [
                {"name": "holdfast-test", "context": {"cluster": "holdfast-test", "user": "admin"}}
            ],
            "current-context": "holdfast-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        self.kubeconfig.chmod(0o600)

    def _etcd_args(self) -> list[str]:
        data = self.root / "etcd"
        client = f"http://127.0.0.1:{self.ports.etcd}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        return [
            "etcd",
            "--name",
            NODE,
            "--data-dir",
            str(data),
            "--listen-client-urls",
            client,
            "--advertise-client-urls",
            client,
            "--listen-peer-urls",
            peer,
            "--initial-advertise-peer-urls",
            peer,
            "--initial-cluster",
            f"{NODE}={peer}",
            "--log-level",
            "warn",
        ]

    def _apiserver_args(self) -> list[str]:
        pki = self.root / "pki"
        return [
            "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{self.ports.etcd}",
            "--bind-address=0.0.0.0",
            f"--advertise-address={self.node_ip}",
            f"--secure-port={self.ports.apiserver}",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--kubelet-preferred-address-types=InternalIP",
            "--profiling=false",
        ]

    def _controller_manager_args(self) -> list[str]:
        pki = self.root / "pki"
        return [
            "kube-controller-manager",
            f"--kubeconfig={self.kubeconfig}",
            f"--secure-port={self.ports.controller_manager}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-cidr={CLUSTER_CIDR}",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--use-service-account-credentials=false",
            "--profiling=false",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            "kube-scheduler",
            f"--kubeconfig={self.kubeconfig}",
            f"--secure-port={self.ports.scheduler}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _proxy_args(self) -> list[str]:
        return [
            "kube-proxy",
            f"--kubeconfig={self.kubeconfig}",
            f"--hostname-override={NODE}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={CLUSTER_CIDR}",
            f"--metrics-bind-address=127.0.0.1:{self.ports.proxy_metrics}",
            f"--healthz-bind-address=127.0.0.1:{self.ports.proxy_healthz}",
        ]

    def _kubelet_args(self) -> list[str]:
        kubelet = self.root / "kubelet"
        kubelet.mkdir(parents=True, exist_ok=True)
        (self.root / "resolv.conf").write_text("")  # pods ask cluster DNS only (no upstream here)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.node_ip,
            "port": self.ports.kubelet,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.ports.kubelet_healthz,
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            "cgroupDriver": "cgroupfs",
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "failSwapOn": False,
            "clusterDNS": [self.node_ip],
            "clusterDomain": "cluster.local",
            "resolvConf": str(self.root / "resolv.conf"),
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "serializeImagePulls": False,
            "maxPods": 30,
            "rotateCertificates": False,
        }
        (kubelet / "config.yaml").write_text(yaml.safe_dump(config))
        return [
            "kubelet",
            f"--config={kubelet / 'config.yaml'}",
            f"--kubeconfig={self.kubeconfig}",
            f"--root-dir={kubelet / 'root'}",
            f"--cert-dir={kubelet / 'pki'}",
            f"--hostname-override={NODE}",
            f"--node-ip={self.node_ip}",
            "--v=1",
        ]

    def _write_containerd_config(self) -> None:
        base = self.root / "containerd"
        hosts = base / "certs.d" / self.registry_host
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts.toml").write_text(
            f'server = "http://{self.registry_host}"\n\n'
            f'[host."http://{self.registry_host}"]\n'
            '  capabilities = ["pull", "resolve"]\n'
        )
        cni = self.root / "cni"
        cni.mkdir(parents=True, exist_ok=True)
        conflist = {
            "cniVersion": "0.4.0",
            "name": "holdfast-kube",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": True,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.root / "cni-ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }
        (cni / "10-holdfast.conflist").write_text(json.dumps(conflist, indent=2))
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        (base / "config.toml").write_text(
            f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"

[grpc]
  address = "{self.containerd_socket}"

[{cri}]
  sandbox_image = "{self.registry_host}/{PAUSE_IMAGE}:1"
  stream_server_address = "127.0.0.1"
  stream_server_port = "{self.ports.stream}"
  disable_apparmor = true
  # this sandbox has no CAP_SYS_RESOURCE: an OOM score below containerd's own (the pause
  # container's -998) makes runc fail with "can't get final child's PID from pipe"
  restrict_oom_score_adj = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni}"

[{cri}.registry]
  config_path = "{base / "certs.d"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
"""
        )

    def _write_corefile(self) -> None:
        (self.root / "Corefile").write_text(
            f""".:53 {{
    bind {self.node_ip}
    errors
    ready 127.0.0.1:{self.ports.dns_ready}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {self.kubeconfig} holdfast-test
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""
        )
