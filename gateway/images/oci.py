"""OCI layouts with umoci (no daemon), made reproducible: every file's mtime is set to the
build epoch before it becomes a layer, umoci writes tar entries in path order, every
``created`` field is the epoch, and the archives are tars with sorted, epoch-dated entries."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from gateway.images.spec import ImageConfig, rfc3339


class OciError(Exception):
    """umoci failed; the message carries its last line."""


def umoci(*args: str) -> None:
    done = subprocess.run(["umoci", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise OciError(f"umoci {args[0]} failed: {' '.join(last)}")


def normalise_tree(root: Path, epoch: int) -> None:
    """Every entry's mtime (and atime) set to ``epoch``, symlinks themselves included."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.utime(os.path.join(dirpath, name), (epoch, epoch), follow_symlinks=False)
    os.utime(root, (epoch, epoch), follow_symlinks=False)


def new_image(layout: Path, tag: str, epoch: int) -> None:
    """An empty image ``tag`` in ``layout`` (created if absent), dated ``epoch``."""
    if not (layout / "index.json").is_file():
        umoci("init", "--layout", str(layout))
    umoci("new", "--image", f"{layout}:{tag}")
    umoci(
        "config",
        "--image",
        f"{layout}:{tag}",
        "--no-history",
        "--created",
        rfc3339(epoch),
        "--architecture",
        "amd64",
        "--os",
        "linux",
    )


def insert(
    layout: Path, tag: str, source: Path, target: str, epoch: int, *, new_tag: str = ""
) -> None:
    """One layer holding ``source`` at ``target`` (tree normalised first), on top of ``tag``."""
    normalise_tree(source, epoch)
    args = ["insert", "--image", f"{layout}:{tag}"]
    if new_tag:
        args += ["--tag", new_tag]
    args += ["--history.created", rfc3339(epoch), "--history.created_by", f"holdfast: {target}"]
    umoci(*args, str(source), target)


def configure(
    layout: Path, tag: str, config: ImageConfig, labels: Mapping[str, str], epoch: int, user: str
) -> None:
    """Entrypoint, env, user, workdir, ports, volumes and labels (also as manifest annotations);
    ``created`` is the epoch, no history entry."""
    args = ["config", "--image", f"{layout}:{tag}", "--no-history", "--created", rfc3339(epoch)]
    args += ["--config.user", user, "--config.workingdir", config.workdir]
    args += ["--clear=config.entrypoint", "--clear=config.cmd"]
    for item in config.entrypoint:
        args += ["--config.entrypoint", item]
    for item in config.cmd:
        args += ["--config.cmd", item]
    for item in config.env:
        args += ["--config.env", item]
    for port in config.ports:
        args += ["--config.exposedports", port]
    for volume in config.volumes:
        args += ["--config.volume", volume]
    for key, value in labels.items():
        args += ["--config.label", f"{key}={value}", "--manifest.annotation", f"{key}={value}"]
    umoci(*args)


def _blob(layout: Path, digest: str) -> Path:
    algo, hexa = digest.split(":", 1)
    return layout / "blobs" / algo / hexa


def manifest_descriptor(layout: Path, tag: str) -> dict[str, object]:
    """The index entry of ``tag`` (media type, digest, size, annotations)."""
    index = json.loads((layout / "index.json").read_text())
    for entry in index.get("manifests", []):
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            return dict(entry)
    raise OciError(f"no tag {tag} in {layout}")


def read_blob(layout: Path, digest: str) -> dict[str, object]:
    return json.loads(_blob(layout, digest).read_text())  # type: ignore[no-any-return]


def image_blobs(layout: Path, tag: str) -> list[str]:
    """Digests of the manifest, its config and its layers."""
    desc = manifest_descriptor(layout, tag)
    digest = str(desc["digest"])
    manifest = read_blob(layout, digest)
    config = manifest["config"]
    layers = manifest["layers"]
    assert isinstance(config, dict) and isinstance(layers, list)
    return [digest, str(config["digest"]), *(str(layer["digest"]) for layer in layers)]


def _tar_add(
    tar: tarfile.TarFile, name: str, data: bytes | None, epoch: int, src: Path | None
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
    if data is None and src is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        return
    info.mode = 0o644
    if src is not None:
        info.size = src.stat().st_size
        with src.open("rb") as fh:
            tar.addfile(info, fh)
    else:
        assert data is not None
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def write_archive(layout: Path, tag: str, ref_name: str, dest: Path, epoch: int) -> None:
    """An ``oci-archive`` of one image: its own index.json (one manifest, ``ref_name`` as the
    reference) and exactly its blobs; entries sorted, dated ``epoch``, owned by root."""
    desc = manifest_descriptor(layout, tag)
    desc["annotations"] = {"org.opencontainers.image.ref.name": ref_name}
    index = {"schemaVersion": 2, "manifests": [desc]}
    files: dict[str, bytes | Path | None] = {
        "blobs": None,
        "blobs/sha256": None,
        "index.json": (json.dumps(index, sort_keys=True, separators=(",", ":")) + "\n").encode(),
        "oci-layout": b'{"imageLayoutVersion":"1.0.0"}\n',
    }
    for digest in image_blobs(layout, tag):
        files["blobs/" + digest.replace(":", "/")] = _blob(layout, digest)
    tmp = dest.with_name(dest.name + ".partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            item = files[name]
            if isinstance(item, Path):
                _tar_add(tar, name, None, epoch, item)
            else:
                _tar_add(tar, name, item, epoch, None)
    tmp.replace(dest)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_size(layout: Path, tag: str) -> tuple[int, int]:
    """(compressed bytes of the manifest, config and layers; uncompressed bytes of the layers
    are not known without reading them, so the second is the number of layers)."""
    blobs = image_blobs(layout, tag)
    return sum(_blob(layout, d).stat().st_size for d in blobs), len(blobs) - 2


def gc(layout: Path) -> None:
    umoci("gc", "--layout", str(layout))


def remove_tags(layout: Path, tags: Iterable[str]) -> None:
    for tag in tags:
        umoci("rm", "--image", f"{layout}:{tag}")
