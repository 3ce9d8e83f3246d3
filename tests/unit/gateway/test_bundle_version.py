"""The bundle version: what names a bundle folder and, on hosts, the gateway's virtualenv, so a
newer bundle installs beside the older one (upgrade) and the older one stays for a rollback; and
the wheel-cache digest index that keeps rebuilds from re-reading gigabytes of wheels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gateway.bundle.build import BuildError, BuildOptions, build
from gateway.bundle.checksums import sha256_file
from gateway.bundle.records import Manifest
from gateway.bundle.wheelhouse import DIGEST_INDEX, cached_digests

pytestmark = pytest.mark.unit

BASE = {
    "holdfast_version": "0.1.0",
    "created": "2026-01-01T00:00:00+00:00",
    "python_version": "3.11",
    "platform": "manylinux_2_28_x86_64",
    "artefacts": [],
}


def test_a_manifest_without_a_bundle_version_is_labelled_by_the_holdfast_version() -> None:
    assert Manifest.model_validate(BASE).label == "0.1.0"


def test_a_bundle_version_labels_the_manifest() -> None:
    manifest = Manifest.model_validate({**BASE, "bundle_version": "0.1.0-r2"})
    assert manifest.label == "0.1.0-r2"
    assert Manifest.model_validate_json(manifest.model_dump_json()).bundle_version == "0.1.0-r2"


@pytest.mark.parametrize("bad", ["../evil", "a/b", "-starts-with-dash", "with space", "x" * 65])
def test_a_bundle_version_that_is_no_safe_folder_name_is_refused_before_any_file_is_written(
    tmp_path: Path, bad: str
) -> None:
    missing = tmp_path / "missing"
    opts = BuildOptions(
        out=tmp_path / "out",
        repo_root=tmp_path,
        wheel_cache=missing,
        weaviate_binary=missing,
        ollama_binary=missing,
        helm_binary=missing,
        bundle_version=bad,
        download=False,
    )
    with pytest.raises(BuildError, match="bundle version"):
        build(opts)
    assert not (tmp_path / "out").exists()


def test_wheel_digests_are_remembered_and_recomputed_when_a_wheel_changes(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"first")
    first = cached_digests(tmp_path)
    assert first == {wheel: sha256_file(wheel)}
    index = json.loads((tmp_path / DIGEST_INDEX).read_text())
    # The index is what a rebuild reads: a remembered digest is used as long as size and mtime
    # match (shown here by planting one) ...
    index[wheel.name][2] = "f" * 64
    (tmp_path / DIGEST_INDEX).write_text(json.dumps(index))
    assert cached_digests(tmp_path) == {wheel: "f" * 64}
    # ... and a wheel whose content (so size or mtime) changed is hashed again.
    wheel.write_bytes(b"second, longer")
    os.utime(wheel, ns=(1, 2))
    assert cached_digests(tmp_path) == {wheel: sha256_file(wheel)}


def test_a_broken_digest_index_is_rebuilt(tmp_path: Path) -> None:
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"bytes")
    (tmp_path / DIGEST_INDEX).write_text("{not json")
    assert cached_digests(tmp_path) == {wheel: sha256_file(wheel)}
    assert json.loads((tmp_path / DIGEST_INDEX).read_text())[wheel.name][2] == sha256_file(wheel)
