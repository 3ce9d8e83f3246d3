"""Bundle verify logic on small hand-made bundles: a folder and its tar archive."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from gateway.bundle.checksums import SumsFormatError, format_sums, parse_sums, sha256_file
from gateway.bundle.records import Artefact, Manifest
from gateway.bundle.verify import BundleFormatError, verify
from gateway.bundle.wheelhouse import Target, parse_lock

pytestmark = pytest.mark.unit

FILES = {
    "wheels/demo-1.0-py3-none-any.whl": ("wheel", "demo", "1.0", b"PK\x03\x04 wheel bytes"),
    "bin/ollama": ("binary", "ollama", "v0.12.6", b"\x7fELF ollama"),
    "models/chat/model.gguf": ("model", "chat-model", "1.0.0", b"GGUF" + bytes(range(256))),
    "helm/holdfast-0.1.0.tgz": ("chart", "holdfast-chart", "0.1.0", b"\x1f\x8b chart"),
}


def make_bundle(root: Path) -> Path:
    folder = root / "holdfast-bundle-0.1.0"
    artefacts = []
    for rel, (kind, name, version, data) in FILES.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        artefacts.append(
            Artefact(
                path=rel,
                kind=kind,
                name=name,
                version=version,  # type: ignore[arg-type]
                sha256=sha256_file(path),
                size=len(data),
            )
        )
    manifest = Manifest(
        holdfast_version="0.1.0",
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


def pack(folder: Path) -> Path:
    archive = folder.parent / f"{folder.name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def flip_one_byte(path: Path, offset: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_intact_bundle_and_its_archive_verify(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path)
    for target in (folder, pack(folder)):
        report = verify(target)
        assert report.ok, report.problems
        assert report.checked == len(FILES) + 1


@pytest.mark.parametrize("rel", sorted(FILES))
def test_one_flipped_byte_names_exactly_that_artefact(tmp_path: Path, rel: str) -> None:
    folder = make_bundle(tmp_path)
    flip_one_byte(folder / rel)
    for target in (folder, pack(folder)):
        report = verify(target)
        assert not report.ok
        assert [(p.path, p.status) for p in report.problems] == [(rel, "altered")]
        kind, name, version, _ = FILES[rel]
        assert report.problems[0].detail == f"{kind} {name} {version}"


def test_a_missing_artefact_is_reported_missing(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path)
    (folder / "bin/ollama").unlink()
    report = verify(folder)
    assert [(p.path, p.status) for p in report.problems] == [("bin/ollama", "missing")]


def test_an_added_file_is_reported_unexpected(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path)
    (folder / "bin/extra").write_bytes(b"not shipped")
    report = verify(pack(folder))
    assert [(p.path, p.status) for p in report.problems] == [("bin/extra", "unexpected")]


def test_a_manifest_that_disagrees_with_the_sums_is_reported(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path)
    data = json.loads((folder / "manifest.json").read_text())
    data["artefacts"][0]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(data))
    problems = {(p.path, p.status, p.detail) for p in verify(folder).problems}
    assert ("manifest.json", "altered", "") in problems
    first = data["artefacts"][0]["path"]
    assert (first, "altered", "manifest and SHA256SUMS disagree") in problems


def test_a_folder_without_sha256sums_is_not_a_bundle(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path)
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(BundleFormatError, match="no SHA256SUMS"):
        verify(folder)
    with pytest.raises(BundleFormatError, match="does not exist"):
        verify(tmp_path / "nowhere")


def test_sums_parse_both_sha256sum_modes_and_reject_garbage() -> None:
    digest = "a" * 64
    assert parse_sums(f"{digest}  a/b\n{digest} *c\n") == {"a/b": digest, "c": digest}
    with pytest.raises(SumsFormatError, match="line 1"):
        parse_sums("nonsense\n")


def test_lock_parsing_keeps_every_hash_of_a_pin() -> None:
    lock = (
        "torch==2.13.0 \\\n    --hash=sha256:"
        + "1" * 64
        + " \\\n    --hash=sha256:"
        + "2" * 64
        + "\n    # via holdfast\nrich==14.0.0 \\\n    --hash=sha256:"
        + "3" * 64
        + "\n"
    )
    packages = {p.name: p for p in parse_lock(lock)}
    assert packages["torch"].version == "2.13.0"
    assert packages["torch"].hashes == {"1" * 64, "2" * 64}
    assert packages["rich"].hashes == {"3" * 64}


def test_a_glibc_target_accepts_older_manylinux_tags() -> None:
    tags = Target(platform="manylinux_2_28_x86_64").platform_tags()
    assert tags[0] == "manylinux_2_28_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64"} <= set(tags)
    assert Target(platform="macosx_11_0_arm64").platform_tags() == ["macosx_11_0_arm64"]
