"""The bundle's signature, end to end with the real GnuPG tools on a small hand-made bundle
(the real playbook inside, a few stand-in artefacts): `holdfast bundle verify` and the Ansible
bundle role accept a signed bundle and refuse a tampered, unsigned or foreign-signed one before
anything is unpacked. The signatures are made by the same Signer that `holdfast bundle build` uses;
tests/integration/test_offline_install.py signs and installs a full bundle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.bundle.checksums import format_sums, parse_sums, sha256_file
from gateway.bundle.records import Artefact, Manifest
from gateway.bundle.signing import Signer
from tests.integration.signing_keys import KeyPair, make_key_pair

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
VERSION = "0.0.1-signing"


@dataclass(frozen=True)
class Signed:
    folder: Path
    archive: Path
    keys: KeyPair


def _bundle(root: Path) -> Path:
    """A bundle folder: the real playbook, two stand-in artefacts, manifest and SHA256SUMS."""
    folder = root / f"holdfast-bundle-{VERSION}"
    shutil.copytree(REPO / "ansible", folder / "ansible")
    (folder / "bin").mkdir()
    (folder / "bin/ollama").write_bytes(b"\x7fELF stand-in ollama" * 100)
    (folder / "samples").mkdir()
    (folder / "samples/handbook.md").write_text("# Handbook\n\nTwenty-five days of leave.\n")
    artefacts = [
        Artefact(
            path=(rel := p.relative_to(folder).as_posix()),
            kind="playbook" if rel.startswith("ansible/") else "sample",
            name=rel,
            version=VERSION,
            sha256=sha256_file(p),
            size=p.stat().st_size,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]
    manifest = Manifest(
        holdfast_version="0.0.1",
        bundle_version=VERSION,
        created="2026-01-01T00:00:00+00:00",
        python_version="3.11",
        platform="manylinux_2_28_x86_64",
        artefacts=artefacts,
    )
    (folder / "manifest.json").write_text(manifest.model_dump_json())
    sums = [(a.path, a.sha256) for a in artefacts]
    sums.append(("manifest.json", sha256_file(folder / "manifest.json")))
    (folder / "SHA256SUMS").write_text(format_sums(sums))
    return folder


def _pack(folder: Path) -> Path:
    archive = folder.with_name(folder.name + ".tar")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(folder, arcname=folder.name)
    return archive


@pytest.fixture
def signed(tmp_path: Path) -> Signed:
    keys = make_key_pair(tmp_path / "vendor")
    folder = _bundle(tmp_path / "out")
    signer = Signer(keys.secret)
    signer.sign([folder / "SHA256SUMS"])
    archive = _pack(folder)
    signer.sign([archive])
    return Signed(folder, archive, keys)


def _tamper(signed: Signed) -> None:
    """What an attacker who can write the archive does: change a file, rewrite the manifest and
    SHA256SUMS to match, repack. The checksums then agree; only the signature can tell."""
    victim = signed.folder / "bin/ollama"
    victim.write_bytes(b"\x7fELF something else" * 100)
    manifest = json.loads((signed.folder / "manifest.json").read_text())
    for artefact in manifest["artefacts"]:
        if artefact["path"] == "bin/ollama":
            artefact.update(sha256=sha256_file(victim), size=victim.stat().st_size)
    (signed.folder / "manifest.json").write_text(json.dumps(manifest))
    sums = parse_sums((signed.folder / "SHA256SUMS").read_text())
    rewritten = [(path, sha256_file(signed.folder / path)) for path in sums]
    (signed.folder / "SHA256SUMS").write_text(format_sums(rewritten))
    _pack(signed.folder)


def verify(target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "holdfast"), "bundle", "verify", str(target), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("HOLDFAST_BUNDLE_")},
    )


def _error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stdout + done.stderr
    return lines[0]


def test_a_signed_bundle_and_its_archive_verify(signed: Signed) -> None:
    for target in (signed.folder, signed.archive):
        done = verify(target, "--key", str(signed.keys.public))
        assert done.returncode == 0, done.stdout + done.stderr
        assert 'Good signature from "Holdfast test signer' in done.stdout
        assert "match SHA256SUMS and the manifest" in done.stdout


def test_a_tampered_archive_with_matching_checksums_is_refused(signed: Signed) -> None:
    _tamper(signed)
    assert verify(signed.archive, "--allow-unsigned").returncode == 0  # the sums agree ...
    for target in (signed.archive, signed.folder):  # ... the signatures do not
        line = _error(verify(target, "--key", str(signed.keys.public)))
        assert "bad signature" in line and "BAD signature" in line, line


def test_a_missing_signature_a_foreign_key_or_no_key_is_refused(signed: Signed) -> None:
    (signed.archive.with_name(signed.archive.name + ".sig")).unlink()
    assert "is missing: the bundle is not signed" in _error(
        verify(signed.archive, "--key", str(signed.keys.public))
    )
    stranger = make_key_pair(signed.folder.parent.parent / "stranger", "Someone else")
    assert "No public key" in _error(verify(signed.folder, "--key", str(stranger.public)))
    assert "no public key: pass --key" in _error(verify(signed.folder))


def _playbook(signed: Signed, root: Path) -> subprocess.CompletedProcess[str]:
    variables = {
        "holdfast_install_root": str(root),
        "holdfast_service_manager": "process",
        "holdfast_manage_user": False,
        "holdfast_service_user": "root",
        "holdfast_service_group": "root",
        "holdfast_environment": "development",
        "bundle_public_key": str(signed.keys.public),
    }
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = root.parent / "inventory.yml"
    inventory.write_text(
        json.dumps({"holdfast": {"hosts": {"localhost": host}, "vars": variables}})
    )
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "site.yml", "--tags", "bundle"],
        cwd=signed.folder / "ansible",
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )


def test_the_bundle_role_unpacks_only_a_signed_archive(signed: Signed, tmp_path: Path) -> None:
    unpacked = tmp_path / "root/opt/holdfast/bundles" / signed.folder.name
    good = _playbook(signed, tmp_path / "root")
    assert good.returncode == 0, (good.stdout + good.stderr)[-4000:]
    assert (unpacked / "SHA256SUMS.sig").is_file()

    shutil.rmtree(tmp_path / "root")
    _tamper(signed)
    bad = _playbook(signed, tmp_path / "root")
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "Verify the archive's signature" in out and "BAD signature" in out, out[-4000:]
    assert not unpacked.exists()  # refused before a single member was unpacked
