"""The air-gapped path end to end: build the bundle, verify it, then install it with the Ansible
playbook inside a network namespace that has only loopback, onto localhost under a dedicated
install root. Weaviate, Ollama and the gateway start from the installed tree (the units'
ExecStart lines, run by the `process` service manager: no systemd PID 1 here) and a question
through the installed gateway comes back with citations.

The wheel download cache (~/.cache/holdfast/wheels) is reused across runs; the bundle, the install
root and every process started here are removed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import PORT_BASE

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
WORK = Path(tempfile.gettempdir()) / f"holdfast-install-test-{PORT_BASE}"
PORTS = PORT_BASE + 500  # the install's services: PORTS .. PORTS+7
QUESTION = "How many days of annual leave do employees get, and how do they request it?"
UNITS = ("holdfast-weaviate", "holdfast-ollama", "holdfast-gateway")


def run(
    argv: list[str], timeout: float = 900, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


@dataclass(frozen=True)
class Bundle:
    folder: Path
    archive: Path


@pytest.fixture(scope="module")
def bundle() -> Iterator[Bundle]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    done = run([str(BIN / "holdfast"), "bundle", "build", "--out", str(WORK / "out")], 3600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    folder = WORK / "out" / "holdfast-bundle-0.1.0"
    yield Bundle(folder, folder.with_name(folder.name + ".tar"))
    shutil.rmtree(WORK, ignore_errors=True)


def test_bundle_verifies_and_a_flipped_byte_is_named(bundle: Bundle) -> None:
    holdfast = str(BIN / "holdfast")
    for target in (bundle.folder, bundle.archive):
        done = run([holdfast, "bundle", "verify", str(target)])
        assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((bundle.folder / "manifest.json").read_text())
    kinds = {a["kind"] for a in manifest["artefacts"]}
    assert {"wheel", "binary", "model", "chart", "playbook", "lock"} <= kinds
    sbom = json.loads((bundle.folder / "sbom.cdx.json").read_text())
    names = {c["name"] for c in sbom["components"]}
    assert {"torch", "weaviate-server", "ollama", "chat-model"} <= names

    victim = bundle.folder / "bin" / "ollama"
    original = victim.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    victim.write_bytes(bytes(flipped))
    try:
        done = run([holdfast, "bundle", "verify", str(bundle.folder)])
    finally:
        victim.write_bytes(original)
    assert done.returncode == 1
    problems = [
        line for line in done.stderr.splitlines() if line.startswith(("altered", "missing"))
    ]
    assert problems == [f"altered bin/ollama (binary ollama {_stamp('ollama')})"], done.stderr


def _stamp(name: str) -> str:
    return (BIN / f".{name}.version").read_text().strip()


class Namespace:
    """A network namespace with only loopback up, held open by one sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            start_new_session=True,
        )
        # Popen returns before unshare has switched namespaces: wait until the holder sits in
        # its own namespace and has exec'd sleep (so loopback is up), or nsenter would join ours.
        deadline = time.monotonic() + 30
        ours = os.readlink("/proc/self/ns/net")
        while time.monotonic() < deadline:
            try:
                theirs = os.readlink(f"/proc/{self.holder.pid}/ns/net")
                comm = Path(f"/proc/{self.holder.pid}/comm").read_text().strip()
            except OSError:
                theirs, comm = ours, ""
            if theirs != ours and comm == "sleep":
                return
            time.sleep(0.05)
        raise AssertionError("the loopback-only namespace did not come up")

    def run(self, argv: list[str], timeout: float = 1800, **kwargs: object):  # type: ignore[no-untyped-def]
        enter = ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--"]
        return run([*enter, *argv], timeout, **kwargs)

    def close(self) -> None:
        os.killpg(self.holder.pid, signal.SIGTERM)
        self.holder.wait(timeout=10)


@dataclass
class Install:
    ns: Namespace
    bundle: Bundle
    root: Path
    inventory: Path
    first: subprocess.CompletedProcess[str]

    def playbook(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.ns.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.inventory), "site.yml", *extra],
            cwd=self.bundle.folder / "ansible",
            env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"},
        )

    @property
    def venv_bin(self) -> Path:
        return self.root / "opt/holdfast/venvs/current/bin"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOLDFAST_HOME": str(self.root / "var/lib/holdfast"),
            "HOLDFAST_CONFIG": str(self.root / "etc/holdfast/holdfast.yaml"),
        }


def _inventory(root: Path) -> str:
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    ports = {
        "holdfast_weaviate_http_port": PORTS,
        "holdfast_weaviate_grpc_port": PORTS + 1,
        "holdfast_weaviate_gossip_port": PORTS + 2,
        "holdfast_weaviate_data_port": PORTS + 3,
        "holdfast_weaviate_raft_port": PORTS + 4,
        "holdfast_weaviate_raft_rpc_port": PORTS + 5,
        "holdfast_ollama_port": PORTS + 6,
        "holdfast_gateway_port": PORTS + 7,
    }
    variables = {
        "holdfast_install_root": str(root),
        "holdfast_service_manager": "process",
        "holdfast_manage_user": False,
        "holdfast_service_user": "root",
        "holdfast_service_group": "root",
        "holdfast_environment": "development",
        "gateway_python": str(python),
        # a short answer with a generous timeout: CI machines are shared and CPU-only
        "gateway_chat_timeout": 600,
        "gateway_max_tokens": 96,
        "llm_num_predict": 96,
        **ports,
    }
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return json.dumps({"holdfast": {"hosts": {"localhost": host}, "vars": variables}})


@pytest.fixture(scope="module")
def installed(bundle: Bundle) -> Iterator[Install]:
    root = WORK / "root"
    inventory = WORK / "inventory.yml"
    inventory.write_text(_inventory(root))  # JSON is YAML
    ns = Namespace()
    try:
        no_route = ns.run(["ip", "route", "get", "1.1.1.1"])
        assert no_route.returncode != 0, "the namespace must have no route out"
        install = Install(ns, bundle, root, inventory, first=None)  # type: ignore[arg-type]
        install.first = install.playbook()
        yield install
    finally:
        for unit in reversed(UNITS):
            unit_file = root / f"etc/systemd/system/{unit}.service"
            if unit_file.exists():
                run(
                    [
                        str(root / "opt/holdfast/sbin/holdfast-unit-run"),
                        "stop",
                        str(unit_file),
                        str(root / "run/holdfast"),
                        str(root / "var/log/holdfast"),
                    ]
                )
        ns.close()


def _recap(output: str) -> dict[str, int]:
    match = re.search(r"localhost\s*:\s*((?:\w+=\d+\s*)+)", output)
    assert match, output[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match[1])}


def test_playbook_installs_from_the_bundle_with_no_network(installed: Install) -> None:
    out = installed.first.stdout + installed.first.stderr
    assert installed.first.returncode == 0, out[-5000:]
    assert _recap(out)["failed"] == 0
    key_file = installed.root / "var/lib/holdfast/secrets/admin-api-key"
    info = key_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()  # the service user of this test install (root)
    for unit in UNITS:
        status = run(
            [
                str(installed.root / "opt/holdfast/sbin/holdfast-unit-run"),
                "status",
                str(installed.root / f"etc/systemd/system/{unit}.service"),
                str(installed.root / "run/holdfast"),
                str(installed.root / "var/log/holdfast"),
            ]
        )
        assert status.stdout.strip() == "running", unit


def test_rendered_units_pass_systemd_analyze_verify(installed: Install) -> None:
    assert installed.first.returncode == 0
    units = [installed.root / f"etc/systemd/system/{u}.service" for u in UNITS]
    text = units[0].read_text()
    assert "ProtectSystem=strict" in text and "NoNewPrivileges=true" in text
    done = run(["systemd-analyze", "verify", "--man=no", *map(str, units)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_installed_gateway_answers_with_citations(installed: Install) -> None:
    assert installed.first.returncode == 0
    holdfast = str(installed.venv_bin / "holdfast")
    samples = installed.root / "opt/holdfast/bundles/holdfast-bundle-0.1.0/samples"
    done = installed.ns.run(
        [holdfast, "ingest", str(samples), "--groups", "handbook"], env=installed.env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "indexed" in done.stdout
    done = installed.ns.run(
        [holdfast, "keys", "create", "reader", "--groups", "handbook", "--roles", "query"],
        env=installed.env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    key = re.search(r"hf_\S+", done.stdout)
    assert key, done.stdout
    done = installed.ns.run(
        [holdfast, "query", QUESTION, "--key", key[0], "--json"], env=installed.env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    body = json.loads(done.stdout)
    assert not body["refused"], body
    assert body["answer"].strip()
    assert any(c["source"].endswith(".md") for c in body["citations"]), body["citations"]


def test_second_run_changes_nothing(installed: Install) -> None:
    assert installed.first.returncode == 0
    again = installed.playbook()
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-5000:]
    assert _recap(out)["changed"] == 0, out[-5000:]


def test_check_mode_passes_on_the_installed_target(installed: Install) -> None:
    assert installed.first.returncode == 0
    check = installed.playbook("--check")
    out = check.stdout + check.stderr
    assert check.returncode == 0, out[-5000:]
    assert _recap(out)["changed"] == 0, out[-5000:]
