"""The air-gapped path end to end: build the bundle, verify it, then install it with the Ansible
playbook inside a network namespace that has only loopback, onto localhost under a dedicated
install root. Weaviate, Ollama and the gateway start from the installed tree (the units'
ExecStart lines, run by the `process` service manager: no systemd PID 1 here) and a question
through the installed gateway comes back with citations. An HTML page is ingested offline (spaCy's
model by the name unstructured hard-codes comes from the bundle's en_core_web_sm alias wheel).
Then a second bundle (same wheelhouse, a new bundle version) is built onto the host and installed
over the first: data and keys survive, the gateway moves to a new virtualenv, and rollback.yml
moves it back.

OCR: the bundle carries tesseract (English and, here, German data) and poppler-utils as Debian
packages with their closure; that closure installs onto a minimal Debian host from the bundle
alone (simulated), and the playbook installs them for real from the bundle, with no network:
tesseract-ocr-deu is absent before (this test removes it if an earlier run left it) and present
at the bundled version after. It is removed again at the end; the system's other packages are
the build machine's own, already installed, and stay untouched.

The wheel and .deb download caches (~/.cache/holdfast/) are reused across runs; the bundle, the
install root and every process started here are removed at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.bundle import debs
from gateway.bundle.checksums import parse_sums, sha256_file
from tests.integration.conftest import PORT_BASE
from tests.integration.netns import Namespace, run
from tests.integration.pii_canaries import canaries
from tests.integration.signing_keys import KeyPair, make_key_pair

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
WORK = Path(tempfile.gettempdir()) / f"holdfast-install-test-{PORT_BASE}"
PORTS = PORT_BASE + 500  # the install's services: PORTS .. PORTS+7
QUESTION = "How many days of annual leave do employees get, and how do they request it?"
UNITS = ("holdfast-weaviate", "holdfast-ollama", "holdfast-gateway")
FIRST = "0.1.0"
NEXT = "0.1.0-r2"  # the upgrade's bundle version
TIMINGS: list[tuple[str, float]] = []  # (step, seconds), printed at the end (pytest -s)
CANARIES = canaries()
OCR_LANGUAGES = ("eng", "deu")
OCR_PROBE = "tesseract-ocr-deu"  # absent before the install, so the playbook must install it
DEB_TARGET = "debian/bookworm/amd64"
HTML_QUESTION = "Where can employees park, and how do they get a parking permit?"
HTML_PAGE = """<!doctype html>
<html><head><title>Parking policy</title></head><body>
<h1>Parking policy</h1>
<p>Employees may park in the north garage, levels two and three. Visitors park on level one.</p>
<p>To get a parking permit, employees fill in the permit form at the facilities desk in the
lobby; permits are issued within three working days and renewed every January.</p>
</body></html>
"""


@dataclass(frozen=True)
class Bundle:
    folder: Path
    archive: Path
    keys: KeyPair  # the vendor's signing key pair


@pytest.fixture(scope="module")
def bundle() -> Iterator[Bundle]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    keys = make_key_pair(WORK / "vendor")
    started = time.monotonic()
    done = run(
        [
            str(BIN / "holdfast"),
            "bundle",
            "build",
            "--out",
            str(WORK / "out"),
            *(arg for code in OCR_LANGUAGES for arg in ("--ocr-language", code)),
        ],
        3600,
        env={
            **os.environ,
            "HOLDFAST_HOME": str(_builders_home_with_canaries(WORK / "home")),
            "HOLDFAST_BUNDLE_SIGN_KEY": str(keys.secret),
        },
    )
    TIMINGS.append(("bundle build (with archive)", time.monotonic() - started))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    print("\n" + "\n".join(done.stdout.strip().splitlines()[-2:]))  # size and build time
    folder = WORK / "out" / f"holdfast-bundle-{FIRST}"
    yield Bundle(folder, folder.with_name(folder.name + ".tar"), keys)
    shutil.rmtree(WORK, ignore_errors=True)
    print("\n" + "\n".join(f"{seconds:7.0f} s  {step}" for step, seconds in TIMINGS))


def _builders_home_with_canaries(home: Path) -> Path:
    """A used ``$HOLDFAST_HOME`` on the build machine: uploads, logs, audit and a question, all
    holding PII canaries. None of it may travel in the bundle."""
    for relative in ("state/uploads", "logs", "secrets"):
        (home / relative).mkdir(parents=True, exist_ok=True)
    text = "\n".join(f"{p.entity}: {p.value}" for p in CANARIES)
    (home / "state" / "uploads" / "account-review.md").write_text(text)
    (home / "logs" / "gateway.log").write_text(text)
    (home / "state" / "audit.jsonl").write_text(json.dumps({"question": text}))
    (home / "secrets" / "id-key").write_text("k" * 64)
    return home


def test_the_bundle_carries_nothing_from_the_builders_home(bundle: Bundle) -> None:
    """PII canary sweep, bundle sink (issue 16 item 8): every file name and byte of the built
    bundle (its wheels stay compressed: they are pinned third-party files), searched by grep."""
    patterns = WORK / "canaries.txt"
    forms = sorted({form for p in CANARIES for form in p.variants() if len(form) >= 6})
    patterns.write_text("\n".join(forms) + "\n")
    names = "\n".join(str(p.relative_to(bundle.folder)) for p in bundle.folder.rglob("*"))
    assert not [f for f in forms if f.casefold() in names.casefold()]
    done = run(["grep", "-rlaiF", "-f", str(patterns), str(bundle.folder)], 600)
    assert done.returncode == 1, f"canaries found in: {done.stdout[:2000]} {done.stderr[:500]}"
    assert len(forms) >= 30


def test_bundle_verifies_and_a_flipped_byte_is_named(bundle: Bundle) -> None:
    holdfast = str(BIN / "holdfast")
    key = ["--key", str(bundle.keys.public)]
    assert bundle.archive.with_name(bundle.archive.name + ".sig").is_file()
    for target in (bundle.folder, bundle.archive):
        done = run([holdfast, "bundle", "verify", str(target), *key])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Good signature" in done.stdout
    manifest = json.loads((bundle.folder / "manifest.json").read_text())
    kinds = {a["kind"] for a in manifest["artefacts"]}
    assert {"wheel", "binary", "model", "chart", "playbook", "lock"} <= kinds
    sbom = json.loads((bundle.folder / "sbom.cdx.json").read_text())
    names = {c["name"] for c in sbom["components"]}
    assert {"onnxruntime", "weaviate-server", "ollama", "chat-model", "en_core_web_sm"} <= names
    alias = [a for a in manifest["artefacts"] if a["name"] == "en_core_web_sm"]
    assert [a["path"] for a in alias] == ["wheels/en_core_web_sm-3.8.0-py3-none-any.whl"]
    assert manifest["bundle_version"] == FIRST

    victim = bundle.folder / "bin" / "ollama"
    original = victim.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    victim.write_bytes(bytes(flipped))
    try:
        done = run([holdfast, "bundle", "verify", str(bundle.folder), *key])
    finally:
        victim.write_bytes(original)
    assert done.returncode == 1
    problems = [
        line for line in done.stderr.splitlines() if line.startswith(("altered", "missing"))
    ]
    assert problems == [f"altered bin/ollama (binary ollama {_stamp('ollama')})"], done.stderr


def _deb_field(path: Path, field: str) -> str:
    done = run(["dpkg-deb", "--field", str(path), field])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_bundle_carries_ocr_debs_that_install_onto_a_minimal_host_from_the_bundle_alone(
    bundle: Bundle,
) -> None:
    """Every .deb is in the manifest, SHA256SUMS, the flat repository's index and the SBOM with
    the file's own digest, is the package and version it claims, and apt resolves tesseract and
    poppler-utils onto a minimal Debian 12 host (Priority: required and their dependencies) from
    debs/Packages with no other package source; without one dependency it cannot."""
    manifest = json.loads((bundle.folder / "manifest.json").read_text())
    wanted = ["tesseract-ocr", *(f"tesseract-ocr-{c}" for c in OCR_LANGUAGES), "poppler-utils"]
    assert manifest["deb_target"] == DEB_TARGET
    assert manifest["deb_packages"] == wanted
    packaged = [a for a in manifest["artefacts"] if a["kind"] == "deb"]
    assert set(wanted) <= {a["name"] for a in packaged}
    sums = parse_sums((bundle.folder / "SHA256SUMS").read_text())
    index = {p["Filename"]: p for p in debs.stanzas((bundle.folder / "debs/Packages").read_text())}
    sbom = json.loads((bundle.folder / "sbom.cdx.json").read_text())
    purls = {c.get("purl") for c in sbom["components"]}
    for artefact in packaged:
        path = bundle.folder / artefact["path"]
        assert sha256_file(path) == artefact["sha256"] == sums[artefact["path"]]
        assert index[f"./{path.name}"]["SHA256"] == artefact["sha256"]
        assert _deb_field(path, "Package") == artefact["name"]
        assert _deb_field(path, "Version") == artefact["version"]
        assert any(p and p.startswith(f"pkg:deb/debian/{artefact['name']}@") for p in purls)
    assert len(index) == len(packaged)
    total = sum(a["size"] for a in packaged)
    print(f"\nOCR debs: {len(packaged)} packages, {total / 1e6:.1f} MB")

    with tempfile.TemporaryDirectory() as tmp:
        status = debs.minimal_status(Path(tmp), lambda _detail: None)
        planned = debs.prove_closure(bundle.folder / "debs/Packages", status, wanted)
        assert sorted(planned) == sorted(a["name"] for a in packaged)
        # The proof has teeth: an index without libtesseract5 leaves tesseract uninstallable.
        cut = Path(tmp) / "Packages"
        paragraphs = (bundle.folder / "debs/Packages").read_text().split("\n\n")
        cut.write_text("\n\n".join(p for p in paragraphs if "Package: libtesseract5\n" not in p))
        with pytest.raises(debs.DebError, match="tesseract-ocr : Depends: libtesseract5"):
            debs.prove_closure(cut, status, wanted)


def _stamp(name: str) -> str:
    return (BIN / f".{name}.version").read_text().strip()


@dataclass
class Install:
    ns: Namespace
    bundle: Bundle
    root: Path
    inventory: Path
    first: subprocess.CompletedProcess[str]
    reader_key: str = ""  # created by the cited-answer test, used again after the upgrade

    def playbook(
        self, *extra: str, folder: Path | None = None, name: str = "site.yml"
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        done = self.ns.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.inventory), name, *extra],
            cwd=(folder or self.bundle.folder) / "ansible",
            env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"},
        )
        label = " ".join([(folder or self.bundle.folder).name, name, *extra])
        TIMINGS.append((f"ansible-playbook {label}", time.monotonic() - started))
        return done

    def holdfast(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.ns.run([str(self.venv_bin / "holdfast"), *argv], env=self.env)

    def ask(self, question: str) -> dict:  # type: ignore[type-arg]
        done = self.holdfast("query", question, "--key", self.reader_key, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        body = json.loads(done.stdout)
        assert not body["refused"], body
        assert body["answer"].strip()
        return body  # type: ignore[no-any-return]

    def gateway_pid(self) -> int:
        return int((self.root / "run/holdfast/holdfast-gateway.pid").read_text().strip())

    def gateway_venv(self) -> str:
        """Which versioned virtualenv the running gateway loaded its libraries from (the kernel
        shows resolved paths in /proc/PID/maps, so `current` does not hide it)."""
        maps = Path(f"/proc/{self.gateway_pid()}/maps").read_text()
        found = set(re.findall(r"/opt/holdfast/venvs/(holdfast-[^/]+)/", maps))
        assert len(found) == 1, found
        return found.pop()

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


def _inventory(root: Path, public_key: Path) -> str:
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
        "bundle_public_key": str(public_key),
        **ports,
    }
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return json.dumps({"holdfast": {"hosts": {"localhost": host}, "vars": variables}})


@pytest.fixture(scope="module")
def installed(bundle: Bundle) -> Iterator[Install]:
    root = WORK / "root"
    inventory = WORK / "inventory.yml"
    inventory.write_text(_inventory(root, bundle.keys.public))  # JSON is YAML
    if _dpkg_version(OCR_PROBE):  # left by an interrupted run: the install must bring it back
        _purge(OCR_PROBE)
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
        _purge(OCR_PROBE)


def _dpkg_version(package: str) -> str | None:
    """The installed version of a Debian package, None when it is not installed."""
    done = run(["dpkg-query", "--show", "--showformat=${db:Status-Status} ${Version}", package])
    status, _, version = done.stdout.partition(" ")
    return version if done.returncode == 0 and status == "installed" else None


def _purge(package: str) -> None:
    if _dpkg_version(package):
        done = run(
            ["apt-get", "purge", "--yes", "--quiet", "-o", "DPkg::Lock::Timeout=300", package],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        assert done.returncode == 0, done.stdout + done.stderr


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


def test_playbook_installs_the_ocr_packages_from_the_bundle(installed: Install) -> None:
    """With no network, the gateway role installed what the host lacked (the German data, absent
    before) from the bundle's debs/, at the bundled version; tesseract lists both languages."""
    out = installed.first.stdout + installed.first.stderr
    assert installed.first.returncode == 0, out[-5000:]
    manifest = json.loads((installed.bundle.folder / "manifest.json").read_text())
    bundled = {a["name"]: a["version"] for a in manifest["artefacts"] if a["kind"] == "deb"}
    task = r"TASK \[gateway : Install the OCR packages from the bundle[^\n]*\n(\w+): \[localhost\]"
    ran = re.search(task, out)
    assert ran and ran[1] == "changed", out[-5000:]
    assert _dpkg_version(OCR_PROBE) == bundled[OCR_PROBE]
    for package in manifest["deb_packages"]:
        assert _dpkg_version(package), package  # the rest was there already, at any version
    languages = run(["tesseract", "--list-langs"]).stdout.split()
    assert {"eng", "deu"} <= set(languages), languages


def test_rendered_units_pass_systemd_analyze_verify(installed: Install) -> None:
    assert installed.first.returncode == 0
    units = [installed.root / f"etc/systemd/system/{u}.service" for u in UNITS]
    text = units[0].read_text()
    assert "ProtectSystem=strict" in text and "NoNewPrivileges=true" in text
    done = run(["systemd-analyze", "verify", "--man=no", *map(str, units)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_installed_gateway_answers_with_citations(installed: Install) -> None:
    assert installed.first.returncode == 0
    samples = installed.root / f"opt/holdfast/bundles/holdfast-bundle-{FIRST}/samples"
    done = installed.holdfast("ingest", str(samples), "--groups", "handbook")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "indexed" in done.stdout
    done = installed.holdfast(
        "keys", "create", "reader", "--groups", "handbook", "--roles", "query"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    key = re.search(r"hf_\S+", done.stdout)
    assert key, done.stdout
    installed.reader_key = key[0]
    body = installed.ask(QUESTION)
    assert any(c["source"].endswith(".md") for c in body["citations"]), body["citations"]


def test_installed_gateway_ingests_html_offline(installed: Install) -> None:
    """unstructured loads spaCy's model as en_core_web_sm and would download it if missing: the
    bundle's alias wheel must be installed, or this partition fails with no network."""
    assert installed.reader_key, "needs the reader key of the cited-answer test"
    folder = WORK / "html"
    folder.mkdir(exist_ok=True)
    (folder / "parking.html").write_text(HTML_PAGE)
    done = installed.holdfast("ingest", str(folder), "--groups", "handbook")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "indexed" in done.stdout, done.stdout  # exit 0: no file failed
    body = installed.ask(HTML_QUESTION)
    assert any(c["source"].endswith("parking.html") for c in body["citations"]), body


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


def _admin_status(installed: Install, key: str) -> int:
    """HTTP status of an admin-only endpoint called with this key, from inside the namespace."""
    url = f"http://127.0.0.1:{PORTS + 7}/admin/model-changes"
    code = (
        "import sys, urllib.request, urllib.error\n"
        "auth = {'Authorization': 'Bearer ' + sys.argv[2]}\n"
        "req = urllib.request.Request(sys.argv[1], headers=auth)\n"
        "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
        "try:\n"
        "    print(opener.open(req, timeout=30).status)\n"
        "except urllib.error.HTTPError as exc:\n"
        "    print(exc.code)\n"
    )
    done = installed.ns.run([sys.executable, "-c", code, url, key])
    assert done.returncode == 0, done.stdout + done.stderr
    return int(done.stdout.strip())


@dataclass
class Upgrade:
    folder: Path
    build_seconds: float
    pid_before: int
    admin_key: str
    run: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def upgraded(installed: Install) -> Upgrade:
    """A newer bundle (same wheelhouse, bundle version NEXT) built straight into the host's
    bundles folder (the bundle role's "already on the host" path), then site.yml run from it."""
    assert installed.first.returncode == 0
    assert installed.reader_key, "needs the reader key of the cited-answer test"
    bundles = installed.root / "opt/holdfast/bundles"
    started = time.monotonic()
    done = run(
        [
            str(BIN / "holdfast"),
            "bundle",
            "build",
            "--out",
            str(bundles),
            "--bundle-version",
            NEXT,
            "--no-download",
            "--no-archive",
            "--sign-key",
            str(installed.bundle.keys.secret),
        ],
        3600,
    )
    build_seconds = time.monotonic() - started
    TIMINGS.append(("upgrade bundle build (no archive)", build_seconds))
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    folder = bundles / f"holdfast-bundle-{NEXT}"
    admin_key = (installed.root / "var/lib/holdfast/secrets/admin-api-key").read_text().strip()
    pid_before = installed.gateway_pid()
    upgrade = installed.playbook("-e", '{"bundle_copy_archive": false}', folder=folder)
    return Upgrade(folder, build_seconds, pid_before, admin_key, upgrade)


def test_upgrade_keeps_data_and_keys_in_a_new_virtualenv(
    installed: Install, upgraded: Upgrade
) -> None:
    public_key = str(installed.bundle.keys.public)
    done = run(
        [str(BIN / "holdfast"), "bundle", "verify", str(upgraded.folder), "--key", public_key]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((upgraded.folder / "manifest.json").read_text())
    assert manifest["bundle_version"] == NEXT
    out = upgraded.run.stdout + upgraded.run.stderr
    assert upgraded.run.returncode == 0, out[-5000:]
    assert _recap(out)["failed"] == 0
    venvs = installed.root / "opt/holdfast/venvs"
    assert os.readlink(venvs / "current") == str(venvs / f"holdfast-{NEXT}")
    assert os.readlink(venvs / "previous") == str(venvs / f"holdfast-{FIRST}")
    assert (venvs / f"holdfast-{FIRST}/bin/holdfast").is_file()  # kept for a rollback
    assert installed.gateway_pid() != upgraded.pid_before  # restarted ...
    assert installed.gateway_venv() == f"holdfast-{NEXT}"  # ... from the new virtualenv
    # The keys DB, the admin key and Weaviate's data are the ones from before the upgrade.
    key_file = installed.root / "var/lib/holdfast/secrets/admin-api-key"
    assert key_file.read_text().strip() == upgraded.admin_key
    assert _admin_status(installed, upgraded.admin_key) == 200
    assert _admin_status(installed, "hf_" + "x" * 43) == 401
    body = installed.ask(QUESTION)
    assert any(c["source"].endswith(".md") for c in body["citations"]), body["citations"]
    print(f"\nupgrade bundle build (no archive): {upgraded.build_seconds:.0f} s")


def test_rollback_returns_to_the_previous_virtualenv_and_is_idempotent(
    installed: Install, upgraded: Upgrade
) -> None:
    assert upgraded.run.returncode == 0
    pid_before = installed.gateway_pid()
    back = installed.playbook(folder=upgraded.folder, name="rollback.yml")
    out = back.stdout + back.stderr
    assert back.returncode == 0, out[-5000:]
    assert _recap(out)["changed"] >= 1, out[-5000:]
    venvs = installed.root / "opt/holdfast/venvs"
    assert os.readlink(venvs / "current") == str(venvs / f"holdfast-{FIRST}")
    assert installed.gateway_pid() != pid_before
    assert installed.gateway_venv() == f"holdfast-{FIRST}"
    assert _admin_status(installed, upgraded.admin_key) == 200
    body = installed.ask(HTML_QUESTION)
    assert any(c["source"].endswith("parking.html") for c in body["citations"]), body
    again = installed.playbook(folder=upgraded.folder, name="rollback.yml")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-5000:]
    assert _recap(out)["changed"] == 0, out[-5000:]
    assert installed.gateway_venv() == f"holdfast-{FIRST}"
