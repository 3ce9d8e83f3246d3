"""Container images in the bundle, on small hand-made OCI archives: the manifest records, the
SBOM components, `--images` input checks, and verify's digest check of every blob."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from gateway.bundle import oci_archive
from gateway.bundle.checksums import format_sums, sha256_file
from gateway.bundle.records import Artefact, ImageRecord, Manifest
from gateway.bundle.sbom import add_artefacts, oci_purl
from gateway.bundle.verify import verify

pytestmark = pytest.mark.unit


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def make_archive(
    dest: Path, ref: str = "holdfast-demo:0.1.0", corrupt_layer: bool = False
) -> tuple[str, int]:
    """An oci-archive of one image with one layer (a gzipped tar of one file), as `holdfast
    images build` writes them; returns (manifest digest, bytes of manifest + config + layer)."""
    layer = gzip.compress(_tar({"hello.txt": b"hello from the bundle\n"}), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _digest(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _digest(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": _digest(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    stored_layer = layer[:-9] + bytes([layer[-9] ^ 0xFF]) + layer[-8:] if corrupt_layer else layer
    blobs = {
        "blobs/sha256/" + _digest(b)[7:]: stored
        for b, stored in ((manifest, manifest), (config, config), (layer, stored_layer))
    }
    files = {"index.json": json.dumps(index).encode(), "oci-layout": b"{}", **blobs}
    dest.write_bytes(_tar(files))
    return _digest(manifest), len(manifest) + len(config) + len(layer)


def images_output(folder: Path) -> Path:
    """What `holdfast images build --out folder` leaves: images.json, archive, SBOM."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "holdfast-demo.oci.tar"
    digest, size = make_archive(archive)
    (folder / "holdfast-demo.cdx.json").write_text('{"bomFormat": "CycloneDX"}\n')
    entry = {
        "name": "holdfast-demo",
        "tag": "0.1.0",
        "digest": digest,
        "archive": archive.name,
        "archive_sha256": sha256_file(archive),
        "size_bytes": size,
        "layers": 1,
    }
    (folder / "images.json").write_text(json.dumps({"images": [entry]}))
    return folder


def make_bundle(root: Path, images_dir: Path) -> Path:
    """A bundle folder holding only the images, indexed the way `holdfast bundle build` does."""
    folder = root / "holdfast-bundle-0.1.0"
    (folder / "images").mkdir(parents=True)
    built = oci_archive.collect(images_dir, "images")
    artefacts = []
    for image in built:
        (folder / image.record.path).write_bytes(image.archive.read_bytes())
        artefacts.append(
            Artefact(
                path=image.record.path,
                kind="image",
                name=image.record.name,
                version=image.record.tag,
                sha256=image.sha256,
                size=image.archive.stat().st_size,
            )
        )
    manifest = Manifest(
        holdfast_version="0.1.0",
        created="2026-01-01T00:00:00+00:00",
        python_version="3.11",
        platform="manylinux_2_28_x86_64",
        artefacts=artefacts,
        images=[image.record for image in built],
    )
    reindex(folder, manifest)
    return folder


def reindex(folder: Path, manifest: Manifest) -> None:
    """Rewrite manifest.json and SHA256SUMS to the files as they are now (what a tamperer with
    write access but no signing key can do)."""
    artefacts = [
        a.model_copy(update={"sha256": sha256_file(folder / a.path)}) for a in manifest.artefacts
    ]
    manifest = manifest.model_copy(update={"artefacts": artefacts})
    (folder / "manifest.json").write_text(manifest.model_dump_json())
    sums = [(a.path, a.sha256) for a in artefacts]
    sums.append(("manifest.json", sha256_file(folder / "manifest.json")))
    (folder / "SHA256SUMS").write_text(format_sums(sums))


def test_collect_records_name_tag_digest_and_size_of_each_image(tmp_path: Path) -> None:
    folder = images_output(tmp_path / "out")
    [image] = oci_archive.collect(folder, "images")
    entry = json.loads((folder / "images.json").read_text())["images"][0]
    assert image.record == ImageRecord(
        name="holdfast-demo",
        tag="0.1.0",
        digest=entry["digest"],
        path="images/holdfast-demo.oci.tar",
        size=entry["size_bytes"],
    )
    assert image.sha256 == entry["archive_sha256"]
    assert image.sbom == folder / "holdfast-demo.cdx.json"


def test_collect_refuses_an_archive_changed_after_the_image_build(tmp_path: Path) -> None:
    folder = images_output(tmp_path / "out")
    make_archive(folder / "holdfast-demo.oci.tar", ref="holdfast-demo:0.2.0")
    with pytest.raises(oci_archive.ImageInputError, match=r"changed since images\.json"):
        oci_archive.collect(folder, "images")


def test_collect_refuses_a_folder_that_is_not_an_image_build(tmp_path: Path) -> None:
    with pytest.raises(oci_archive.ImageInputError, match="not the output of `holdfast images"):
        oci_archive.collect(tmp_path, "images")


def test_check_names_a_corrupted_layer_in_one_line(tmp_path: Path) -> None:
    digest, size = make_archive(tmp_path / "a.oci.tar", corrupt_layer=True)
    with (tmp_path / "a.oci.tar").open("rb") as fh:
        _sha, facts = oci_archive.scan(fh)
    record = ImageRecord(name="holdfast-demo", tag="0.1.0", digest=digest, path="x", size=size)
    reason = oci_archive.check(facts, record)
    assert reason.startswith("layer 1 of 1 sha256:")
    assert "is altered (its bytes hash to sha256:" in reason
    assert "\n" not in reason


def test_check_refuses_an_archive_of_another_manifest_digest(tmp_path: Path) -> None:
    digest, size = make_archive(tmp_path / "a.oci.tar")
    with (tmp_path / "a.oci.tar").open("rb") as fh:
        sha, facts = oci_archive.scan(fh)
    assert sha == sha256_file(tmp_path / "a.oci.tar")
    other = "sha256:" + "0" * 64
    record = ImageRecord(name="holdfast-demo", tag="0.1.0", digest=other, path="x", size=size)
    assert (
        oci_archive.check(facts, record)
        == f"index.json names {digest}, manifest.json records {other}"
    )
    assert oci_archive.check(facts, record.model_copy(update={"digest": digest})) == ""


def test_check_refuses_what_is_not_a_tar(tmp_path: Path) -> None:
    (tmp_path / "a.oci.tar").write_bytes(b"\x00garbage" * 100)
    with (tmp_path / "a.oci.tar").open("rb") as fh:
        _sha, facts = oci_archive.scan(fh)
    record = ImageRecord(name="a", tag="1", digest="sha256:" + "0" * 64, path="x", size=0)
    assert oci_archive.check(facts, record)


def test_verify_accepts_a_bundle_with_intact_images_folder_and_archive(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, images_output(tmp_path / "out"))
    assert verify(folder).ok
    archive = tmp_path / "bundle.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=folder.name)
    report = verify(archive)
    assert report.ok and report.checked == 2


def test_verify_reports_a_corrupted_layer_even_with_consistent_checksums(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, images_output(tmp_path / "out"))
    make_archive(folder / "images/holdfast-demo.oci.tar", corrupt_layer=True)
    reindex(folder, Manifest.model_validate_json((folder / "manifest.json").read_text()))
    for target in (folder, _pack(folder)):
        [problem] = verify(target).problems
        assert problem.path == "images/holdfast-demo.oci.tar"
        assert problem.status == "altered"
        assert problem.detail.startswith("image holdfast-demo:0.1.0: layer 1 of 1 sha256:")


def test_verify_reports_a_swapped_archive_as_altered_too(tmp_path: Path) -> None:
    folder = make_bundle(tmp_path, images_output(tmp_path / "out"))
    make_archive(folder / "images/holdfast-demo.oci.tar", corrupt_layer=True)
    statuses = {(p.path, p.status) for p in verify(folder).problems}
    assert statuses == {("images/holdfast-demo.oci.tar", "altered")}


def test_a_manifest_of_an_older_bundle_without_images_still_reads() -> None:
    manifest = Manifest.model_validate(
        {
            "holdfast_version": "0.1.0",
            "created": "2026-01-01T00:00:00+00:00",
            "python_version": "3.11",
            "platform": "manylinux_2_28_x86_64",
            "artefacts": [],
        }
    )
    assert manifest.images == []


def test_sbom_lists_each_image_as_a_container_with_its_digest(tmp_path: Path) -> None:
    [image] = oci_archive.collect(images_output(tmp_path / "out"), "images")
    artefact = Artefact(
        path=image.record.path,
        kind="image",
        name=image.record.name,
        version=image.record.tag,
        sha256=image.sha256,
        size=1,
    )
    document = add_artefacts({"components": []}, [artefact], images=[image.record])
    [component] = document["components"]  # type: ignore[misc]
    assert component["type"] == "container"
    assert component["purl"] == oci_purl(image.record)
    assert component["purl"].startswith("pkg:oci/holdfast-demo@sha256%3A")
    assert component["hashes"] == [{"alg": "SHA-256", "content": image.sha256}]
    assert {"name": "holdfast:image-digest", "value": image.record.digest} in component[
        "properties"
    ]


def _pack(folder: Path) -> Path:
    archive = folder.parent / f"{folder.name}.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(folder, arcname=folder.name)
    return archive


def test_bundle_build_step_links_archives_and_sboms_under_images(tmp_path: Path) -> None:
    from gateway.bundle import build

    folder = images_output(tmp_path / "out")
    opts = build.BuildOptions(
        out=tmp_path,
        repo_root=tmp_path,
        wheel_cache=tmp_path,
        weaviate_binary=tmp_path,
        ollama_binary=tmp_path,
        helm_binary=tmp_path,
        images_dir=folder,
    )
    collector = build._Collector(tmp_path / "bundle")
    said: list[tuple[str, str]] = []
    build._images(collector, opts, lambda step, detail: said.append((step, detail)))
    assert [(a.path, a.kind) for a in collector.artefacts] == [
        ("images/holdfast-demo.oci.tar", "image"),
        ("images/holdfast-demo.cdx.json", "sbom"),
    ]
    assert [i.path for i in collector.images] == ["images/holdfast-demo.oci.tar"]
    assert {step for step, _ in said} == {"images"} and "images" in build.STEPS
    left_out = build._Collector(tmp_path / "other")
    build._images(left_out, dataclasses.replace(opts, images_dir=None), lambda *_: None)
    assert left_out.artefacts == [] and left_out.images == []
