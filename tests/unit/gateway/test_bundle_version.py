"""The bundle version: what names a bundle folder and, on hosts, the gateway's virtualenv, so a
newer bundle installs beside the older one (upgrade) and the older one stays for a rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.bundle.build import BuildError, BuildOptions, build
from gateway.bundle.records import Manifest

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
