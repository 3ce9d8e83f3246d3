"""The playbook's Kubernetes mode, as far as it can be checked with no cluster: its preflight stops
clearly without a kubeconfig or a reachable cluster, and its templating path renders the values
file that kubernetes.core.helm would install with; `helm template` of the bundle's packaged chart
with that very file must produce objects that validate against the Kubernetes schemas (offline,
kubernetes-validate). A live install onto a cluster is not run here (no cluster exists).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.bundle.checksums import format_sums, sha256_file
from gateway.bundle.records import Artefact, Manifest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
REGISTRY = "registry.customer.internal"
RELEASE = "holdfast"


def _helm() -> str:
    found = BIN / "helm"
    if found.is_file():
        return str(found)
    on_path = shutil.which("helm")
    if not on_path:
        pytest.fail("helm not found in .venv/bin or on PATH: run `make setup`")
    return on_path


@dataclass(frozen=True)
class Target:
    root: Path
    bundle: Path
    inventory: Path
    values: dict[str, Any]

    def playbook(self, *extra: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                str(self.inventory),
                "site.yml",
                "-e",
                f"kubernetes_kubeconfig={kubeconfig}",
                *extra,
            ],
            cwd=ANSIBLE,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    @property
    def values_file(self) -> Path:
        return self.root / "etc/holdfast" / f"helm-values-{RELEASE}.yaml"


def _bundle_with_chart(folder: Path) -> None:
    """The parts of a bundle the Kubernetes mode reads: the packaged chart, manifest, sums."""
    packaged = subprocess.run(
        [_helm(), "package", str(REPO / "helm/holdfast"), "-d", str(folder / "helm")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert packaged.returncode == 0, packaged.stderr
    chart = next((folder / "helm").glob("holdfast-*.tgz"))
    rel = f"helm/{chart.name}"
    version = chart.name.removeprefix("holdfast-").removesuffix(".tgz")
    artefact = Artefact(
        path=rel,
        kind="chart",
        name="holdfast-chart",
        version=version,
        sha256=sha256_file(chart),
        size=chart.stat().st_size,
    )
    manifest = Manifest(
        holdfast_version="0.1.0",
        created=datetime.now(UTC).isoformat(),
        python_version="3.11",
        platform="manylinux_2_28_x86_64",
        artefacts=[artefact],
    )
    (folder / "manifest.json").write_text(manifest.model_dump_json(indent=1))
    sums = [(rel, artefact.sha256), ("manifest.json", sha256_file(folder / "manifest.json"))]
    (folder / "SHA256SUMS").write_text(format_sums(sums))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    base = tmp_path_factory.mktemp("k8s-mode")
    bundle = base / "holdfast-bundle-0.1.0"
    bundle.mkdir()
    _bundle_with_chart(bundle)
    values = yaml.safe_load((REPO / "helm/examples/cpu-minimal.yaml").read_text())
    values.setdefault("global", {})["imageRegistry"] = REGISTRY
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    variables = {
        "holdfast_mode": "kubernetes",
        "holdfast_install_root": str(base / "root"),
        "holdfast_bundle_source_dir": str(bundle),
        "holdfast_bundle_dir": str(bundle),
        "bundle_copy_archive": False,
        "bundle_allow_unsigned": True,  # a hand-made bundle; signing: test_bundle_signing.py
        "holdfast_manage_user": False,
        "holdfast_service_user": user,
        "holdfast_service_group": group,
        "kubernetes_helm_binary": _helm(),
        "kubernetes_release": RELEASE,
        "kubernetes_values": values,
    }
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = base / "inventory.yml"
    inventory.write_text(
        json.dumps({"holdfast": {"hosts": {"localhost": host}, "vars": variables}})
    )
    return Target(base / "root", bundle, inventory, values)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _recap(output: str) -> dict[str, int]:
    match = re.search(r"localhost\s*:\s*((?:\w+=\d+\s*)+)", output)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match[1])}


def test_preflight_stops_without_a_kubeconfig(target: Target) -> None:
    missing = target.root.parent / "no-such-kubeconfig"
    done = target.playbook(kubeconfig=missing)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert f"kubeconfig {missing} not found" in out, out[-3000:]
    assert not target.values_file.exists()  # stopped before anything was rendered


def test_preflight_stops_when_the_cluster_does_not_answer(target: Target) -> None:
    kubeconfig = target.root.parent / "kubeconfig"
    server = f"https://127.0.0.1:{_free_port()}"  # nothing listens there
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    done = target.playbook(kubeconfig=kubeconfig)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert f"Kubernetes cluster unreachable with kubeconfig {kubeconfig}" in out, out[-3000:]
    assert "127.0.0.1" in out  # helm's own reason is passed on
    assert not target.values_file.exists()


def test_rendered_values_file_templates_into_valid_kubernetes_objects(target: Target) -> None:
    """The configure phase alone (preflight needs a cluster): the role writes the values file,
    runs `helm template` itself, and a second run changes nothing."""
    kubeconfig = target.root.parent / "unused-kubeconfig"
    args = ("--tags", "configure", "--skip-tags", "bundle")
    first = target.playbook(*args, kubeconfig=kubeconfig)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-3000:]
    assert "Render the chart with these values" in out
    assert _recap(out)["failed"] == 0
    assert oct(target.values_file.stat().st_mode & 0o777) == "0o600"
    rendered_values = yaml.safe_load(target.values_file.read_text())
    assert rendered_values == target.values

    again = target.playbook(*args, kubeconfig=kubeconfig)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert _recap(again.stdout)["changed"] == 0, again.stdout[-3000:]

    chart = next((target.bundle / "helm").glob("holdfast-*.tgz"))
    kube = kubernetes_validate.latest_version()
    done = subprocess.run(
        [
            _helm(),
            "template",
            RELEASE,
            str(chart),
            "--namespace",
            "holdfast",
            "--kube-version",
            kube,
            "--values",
            str(target.values_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    objects = [o for o in yaml.safe_load_all(done.stdout) if o]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "StatefulSet", "Service"} <= kinds, kinds
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, kube.rsplit(".", 1)[0], strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(exc.message)
    assert not errors, "\n".join(errors)
    images = {
        c["image"]
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet"}
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images and all(i.startswith(REGISTRY + "/") for i in images), images
