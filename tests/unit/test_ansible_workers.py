"""The playbook's ingestion workers and database host (issue 18 item 2), run for real on this
machine: site.yml against localhost in process mode (no systemd as PID 1 here), limited to the
gateway role's preflight, configure, database and workers tasks.

A stand-in virtualenv plays the installed gateway: its `python` (the gateway unit's ExecStart) and
`holdfast worker` sleep, and `holdfast db current|upgrade` keeps a schema marker, so the test sees
exactly what the role starts, stops and migrates. The real wheels are installed by
tests/integration/test_offline_install.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
UNIT_RUNNER = ANSIBLE / "roles/bundle/files/holdfast-unit-run"
PASSWORD = "p@ss/w:rd %$x"  # every character that needs encoding in a URL
ENCODED_URL = "postgresql://holdfast:p%40ss%2Fw%3Ard%20%25%24x@db.internal:5432/holdfast"
LIMITS_URL = "redis://:r3d1s-s3cret@redis.internal:6379/0"
ONLY = ("--tags", "preflight,configure,database,workers")
SKIP = ("--skip-tags", "bundle,weaviate,llm,embeddings,kubernetes")

FAKE_HOLDFAST = """#!/bin/sh
# Stand-in for the virtualenv's holdfast CLI.
marker="$HOLDFAST_HOME/schema-at-head"
case "$1 $2" in
  "db current")
    if [ -f "$marker" ]; then echo "database schema at 0007, head 0007: up to date";
    else echo "database schema at no revision, head 0007: behind: run holdfast db upgrade"; fi ;;
  "db upgrade") echo "$HOLDFAST_CONFIG" > "$marker"; echo "database schema at 0007 (head 0007)" ;;
  "worker ") exec sleep 600 ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
"""
FAKE_PYTHON = "#!/bin/sh\nexec sleep 600\n"


@dataclass(frozen=True)
class Host:
    base: Path
    root: Path
    bundle: Path

    @property
    def etc(self) -> Path:
        return self.root / "etc/holdfast"

    @property
    def home(self) -> Path:
        return self.root / "var/lib/holdfast"

    @property
    def units(self) -> Path:
        return self.root / "etc/systemd/system"

    @property
    def run_dir(self) -> Path:
        return self.root / "run/holdfast"

    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load((self.etc / "holdfast.yaml").read_text())
        return loaded

    def running_workers(self) -> set[str]:
        found = set()
        for pid_file in self.run_dir.glob("holdfast-worker@*.pid"):
            status = self.runner("status", pid_file.name.removesuffix(".pid"))
            if status.stdout.strip() == "running":
                found.add(pid_file.name.removesuffix(".pid"))
        return found

    def runner(self, action: str, unit: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                str(UNIT_RUNNER),
                action,
                str(self.units / f"{unit}.service"),
                str(self.run_dir),
                str(self.root / "var/log/holdfast"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def playbook(
        self,
        *extra: str,
        hosts: tuple[str, ...] = ("localhost",),
        roots: dict[str, Path] | None = None,
        **variables: Any,
    ) -> subprocess.CompletedProcess[str]:
        host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        per_host = {
            h: {
                **host,
                **({"holdfast_install_root": str(roots[h])} if roots and h in roots else {}),
            }
            for h in hosts
        }
        settings = {
            "holdfast_mode": "host",
            "holdfast_service_manager": "process",
            "holdfast_install_root": str(self.root),
            "holdfast_bundle_source_dir": str(self.bundle),
            "holdfast_bundle_dir": str(self.bundle),
            "holdfast_manage_user": False,
            "holdfast_service_user": "root",
            "holdfast_service_group": "root",
            "holdfast_environment": "development",
            "gateway_python": sys.executable,
            **variables,
        }
        inventory = self.base / "inventory.yml"
        inventory.write_text(json.dumps({"holdfast": {"hosts": per_host, "vars": settings}}))
        return subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(inventory), "site.yml", *ONLY, *SKIP, *extra],
            cwd=ANSIBLE,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def recap(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    out = done.stdout + done.stderr
    match = re.search(r"localhost\s*:\s*((?:\w+=\d+\s*)+)", out)
    assert match, out[-3000:]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match[1])}


def ok(done: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return recap(done)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    if os.getuid() != 0:
        pytest.fail("the gateway role writes root-owned files; run as root (CI does)")
    base = tmp_path_factory.mktemp("workers")
    root, bundle = base / "root", base / "holdfast-bundle-0.1.0"
    bundle.mkdir()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    (bundle / "manifest.json").write_text(
        json.dumps({"holdfast_version": "0.1.0", "python_version": python, "artefacts": []})
    )
    made = Host(base, root, bundle)
    second = Host(base, base / "second-root", bundle)
    for one in (made, second):
        prepare(one)
    try:
        yield made
    finally:
        for one in (made, second):
            for pid_file in one.run_dir.glob("*.pid"):
                one.runner("stop", pid_file.name.removesuffix(".pid"))


def prepare(host: Host) -> None:
    """The folders the bundle role makes, its unit runner, and a stand-in virtualenv."""
    root = host.root
    for folder in (host.etc, host.home, host.units, host.run_dir, root / "var/log/holdfast"):
        folder.mkdir(parents=True)
    sbin = root / "opt/holdfast/sbin"
    sbin.mkdir(parents=True)
    shutil.copy(UNIT_RUNNER, sbin / "holdfast-unit-run")
    venv_bin = root / "opt/holdfast/venvs/holdfast-0.1.0/bin"
    venv_bin.mkdir(parents=True)
    for name, text in (("holdfast", FAKE_HOLDFAST), ("python", FAKE_PYTHON)):
        (venv_bin / name).write_text(text)
        (venv_bin / name).chmod(0o755)
    (root / "opt/holdfast/venvs/current").symlink_to(venv_bin.parent)


def test_workers_without_a_database_are_refused(host: Host) -> None:
    done = host.playbook(holdfast_worker_count=2)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert "holdfast_database_host (or holdfast_database_url) is required" in out
    assert "holdfast_worker_count is 2" in out
    assert not host.running_workers()


def test_several_gateway_hosts_without_a_database_are_refused(host: Host) -> None:
    done = host.playbook(hosts=("localhost", "127.0.0.1"))
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert "2 hosts run a gateway" in out


def test_several_gateway_hosts_without_a_rate_limit_store_are_refused(host: Host) -> None:
    """Each gateway counts in its own memory without a shared store: N hosts, N times the limit."""
    knobs: dict[str, Any] = {"holdfast_database_host": "db.internal"}
    done = host.playbook(hosts=("localhost", "127.0.0.1"), **knobs)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    assert "holdfast_limits_storage_url is required: 2 hosts run a gateway" in out
    assert "holdfast_limits_per_host: true" in out
    bad = host.playbook(holdfast_limits_storage_url="http://redis.internal:6379/0")
    assert bad.returncode != 0
    assert "must start with redis://" in bad.stdout + bad.stderr


def test_workers_run_on_the_shared_database_and_the_gateway_only_enqueues(host: Host) -> None:
    from gateway.settings import Settings

    done = host.playbook(
        holdfast_worker_count=2,
        holdfast_database_host="db.internal",
        holdfast_database_password=PASSWORD,
    )
    first = ok(done)
    assert first["failed"] == 0 and first["changed"] > 0
    assert PASSWORD not in done.stdout and "p%40ss" not in done.stdout  # no_log
    config = host.config()
    assert config["ingestion"] == {"run_in_gateway": False}
    url_file = Path(config["database"]["url_file"])
    assert url_file == host.home / "secrets/database-url"
    assert url_file.read_text() == ENCODED_URL + "\n"
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    settings = Settings(**config)  # the gateway and the workers read exactly this
    assert settings.ingestion.run_in_gateway is False
    assert settings.database.dsn() == ENCODED_URL
    # the schema was brought to head once, with the gateway's own configuration
    assert (host.home / "schema-at-head").read_text().strip() == str(host.etc / "holdfast.yaml")

    unit = (host.units / "holdfast-worker@.service").read_text()
    assert re.search(r"^ExecStart=\S+/venvs/current/bin/holdfast worker$", unit, re.MULTILINE)
    assert "Environment=HOLDFAST_CONFIG=" + str(host.etc / "holdfast.yaml") in unit
    assert "TimeoutStopSec=360" in unit and "KillMode=mixed" in unit
    assert "ProtectSystem=strict" in unit and "NoNewPrivileges=true" in unit
    assert host.running_workers() == {"holdfast-worker@1", "holdfast-worker@2"}


def test_a_second_run_and_a_check_run_change_nothing(host: Host) -> None:
    knobs: dict[str, Any] = {
        "holdfast_worker_count": 2,
        "holdfast_database_host": "db.internal",
        "holdfast_database_password": PASSWORD,
    }
    again = ok(host.playbook(**knobs))
    assert again["changed"] == 0, again
    check = host.playbook("--check", "--diff", **knobs)
    assert ok(check)["changed"] == 0
    assert PASSWORD not in check.stdout and "p%40ss" not in check.stdout
    assert host.running_workers() == {"holdfast-worker@1", "holdfast-worker@2"}


def test_lowering_the_count_stops_the_extra_workers(host: Host) -> None:
    knobs: dict[str, Any] = {
        "holdfast_database_host": "db.internal",
        "holdfast_database_password": PASSWORD,
    }
    ok(host.playbook(holdfast_worker_count=1, **knobs))
    assert host.running_workers() == {"holdfast-worker@1"}
    ok(host.playbook(holdfast_worker_count=0, **knobs))
    assert not host.running_workers()
    config = host.config()
    assert "ingestion" not in config  # the gateway runs its jobs again (run_in_gateway default)
    assert config["database"]["url_file"]  # several gateways may still share the database


def test_a_whole_url_wins_and_no_database_means_sqlite(host: Host) -> None:
    dsn = "postgresql://app@db.internal:6432/rag?sslmode=verify-full"
    ok(host.playbook(holdfast_database_host="ignored.internal", holdfast_database_url=dsn))
    assert (host.home / "secrets/database-url").read_text() == dsn + "\n"
    ok(host.playbook())
    config = host.config()
    assert "database" not in config and "ingestion" not in config
    assert not (host.home / "secrets/database-url").exists()


def test_several_gateway_hosts_share_the_database_and_one_index_id_key(host: Host) -> None:
    """Two hosts (two install roots on this machine): the schema is migrated once, both get the
    same database URL and the id key the first host already had."""
    second = Host(host.base, host.base / "second-root", host.bundle)
    first_key = (
        (host.home / "secrets/id-key").read_text()
        if (host.home / "secrets/id-key").exists()
        else None
    )
    knobs: dict[str, Any] = {
        "holdfast_worker_count": 1,
        "holdfast_database_host": "db.internal",
        "holdfast_database_password": PASSWORD,
        "holdfast_limits_storage_url": LIMITS_URL,
    }
    hosts = ("localhost", "127.0.0.1")
    roots = {"localhost": host.root, "127.0.0.1": second.root}
    done = host.playbook(hosts=hosts, roots=roots, **knobs)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-5000:]
    keys = {(h.home / "secrets/id-key").read_text() for h in (host, second)}
    assert len(keys) == 1
    if first_key is not None:
        assert keys == {first_key}
    for one in (host, second):
        assert (one.home / "secrets/database-url").read_text() == ENCODED_URL + "\n"
        assert one.running_workers() == {"holdfast-worker@1"}
        # the shared rate-limit store reaches every gateway through its 0600 EnvironmentFile
        env_file = one.etc / "gateway.env"
        assert f"HOLDFAST_LIMITS__STORAGE_URL={LIMITS_URL}\n" in env_file.read_text()
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        unit = (one.units / "holdfast-gateway.service").read_text()
        assert f"EnvironmentFile={env_file}" in unit
    assert PASSWORD not in out and next(iter(keys)).strip() not in out
    assert "r3d1s-s3cret" not in out  # no_log
    again = host.playbook(hosts=hosts, roots=roots, **knobs)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    changed = re.findall(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", again.stdout, re.MULTILINE)
    assert sorted(changed) == [("127.0.0.1", "0"), ("localhost", "0")], again.stdout[-3000:]
    # a host that already holds another key is refused, not overwritten
    (second.home / "secrets/id-key").write_text("another-key\n")
    refused = host.playbook(hosts=hosts, roots=roots, **knobs)
    assert refused.returncode != 0
    assert "2 different" in refused.stdout + refused.stderr
    assert (second.home / "secrets/id-key").read_text() == "another-key\n"
