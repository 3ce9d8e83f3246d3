"""Build the images from the committed tree (``git archive HEAD``), offline-capable:

    base layer   Debian root filesystem (rootfs.py), shared by every image
    gateway      /opt/holdfast/venv: the runtime subset of the lock + holdfast + the spaCy alias,
                 installed by pip --require-hashes inside the base (its own python3.11)
    weaviate     /usr/local/bin/weaviate-server (the pinned source build in .venv/bin)
    ollama       /usr/local/bin/ollama (same)
    models       /models: the shipped ONNX embedders, the default GGUF, the spaCy model wheel
    vllm         /opt/vllm/venv: vLLM and its CUDA wheels (offline_wheels/vllm), for GPU nodes;
                 built only when named (--only holdfast-vllm)

Each image: a second layer on the shared base, OCI labels, a CycloneDX SBOM inside
(/usr/share/holdfast/sbom.cdx.json) and beside the archive, one ``oci-archive`` tar per image.
Every timestamp is SOURCE_DATE_EPOCH (the commit's time), so a rebuild of the same commit from
the same Debian archive state and the same wheels gives the same digests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.images import oci, rootfs, spec
from gateway.images.gateway_image import GatewayInputs, gateway_layer
from gateway.images.models_image import models_layer
from gateway.images.spec import ImageConfig, ImagesError
from gateway.images.vllm_image import VllmInputs, vllm_layer

Progress = Callable[[str, str], None]
REQUIRED_TOOLS = ("mmdebstrap", "umoci")
WHEEL_TARGET = "cp311-manylinux_2_28_x86_64"  # the cache folder `holdfast bundle build` fills


@dataclass(frozen=True, slots=True)
class BuildOptions:
    repo_root: Path
    out_dir: Path
    images: tuple[str, ...] = spec.IMAGES
    # its own folder: the bundle keeps other .debs under ~/.cache/holdfast/debs
    deb_cache: Path = Path.home() / ".cache" / "holdfast" / "image-debs" / "bookworm-amd64"
    wheel_cache: Path = Path.home() / ".cache" / "holdfast" / "wheels" / WHEEL_TARGET
    bin_dir: Path | None = None
    models_dir: Path | None = None
    download: bool = True
    keep_layout: bool = False
    revision: str = "HEAD"


@dataclass(slots=True)
class ImageResult:
    name: str
    tag: str
    digest: str
    archive: str
    archive_sha256: str
    size_bytes: int
    layers: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class BuildResult:
    revision: str
    epoch: int
    seconds: float
    images: list[ImageResult]


def preflight(images: tuple[str, ...]) -> None:
    """One-line errors for what a build cannot do without."""
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        raise ImagesError(
            f"{', '.join(missing)} not found; run: scripts/apt-install.sh --for images"
            f" {' '.join(missing)}   (or: make images)"
        )
    if os.geteuid() != 0:
        raise ImagesError("building images needs root (mmdebstrap, chroot); run it as root")
    unknown = [i for i in images if i not in spec.ALL_IMAGES]
    if unknown:
        known = ", ".join(spec.ALL_IMAGES)
        raise ImagesError(f"unknown image {', '.join(unknown)}; known: {known}")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ImagesError(f"git {args[0]} failed: {done.stderr.strip()[:200]}")
    return done.stdout.strip()


class _Build:
    def __init__(self, opts: BuildOptions, say: Progress) -> None:
        self.opts = opts
        self.say = say
        self.out = opts.out_dir.resolve()
        self.work = self.out / ".work"
        self.layout = self.work / "oci"
        self.log = self.work / "build.log"
        self.revision = ""
        self.epoch = 0
        self.version = ""
        self.source = ""
        self.src = self.work / "src"
        self.debs: list[spec.DebPackage] = []

    # -- the committed tree, the base ---------------------------------------------------------

    def prepare(self) -> None:
        repo = self.opts.repo_root
        self.revision = _git(repo, "rev-parse", "--verify", f"{self.opts.revision}^{{commit}}")
        env_epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        if not env_epoch:
            env_epoch = _git(repo, "log", "-1", "--format=%ct", self.revision)
        self.epoch = int(env_epoch)
        self.source = os.environ.get("HOLDFAST_IMAGE_SOURCE", "").strip()
        if not self.source:
            try:
                self.source = _git(repo, "remote", "get-url", "origin")
            except ImagesError:
                self.source = "holdfast"
        if self.work.exists():
            rootfs.unmount_under(self.work)
            shutil.rmtree(self.work)
        self.src.mkdir(parents=True)
        self.say("source", f"git archive {self.revision[:12]} (epoch {self.epoch})")
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", self.revision],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            raise ImagesError(f"git archive {self.revision} failed")
        subprocess.run(["tar", "-x", "-C", str(self.src)], input=archive.stdout, check=True)
        project = tomllib.loads((self.src / "pyproject.toml").read_text())["project"]
        self.version = str(project["version"])

    def base(self) -> Path:
        root = self.work / "rootfs"
        self.say("base", f"mmdebstrap {rootfs.SUITE} essential + {', '.join(rootfs.PACKAGES)}")
        try:
            rootfs.build_rootfs(root, self.opts.deb_cache, self.epoch, self.work / "rootfs.log")
        except rootfs.RootfsError as exc:
            raise ImagesError(f"base: {exc}") from exc
        status = (root / "var/lib/dpkg/status").read_text()
        self.debs = spec.installed_debs(status)
        self.say("base", f"{len(self.debs)} Debian packages; layer")
        oci.new_image(self.layout, "base", self.epoch)
        oci.insert(self.layout, "base", root, "/", self.epoch)
        return root

    # -- per image ----------------------------------------------------------------------------

    def _layer_dir(self, name: str) -> Path:
        layer = self.work / f"layer-{name}"
        (layer / "usr/share/holdfast").mkdir(parents=True)
        return layer

    def _data_dir(self, layer: Path, rel: str) -> None:
        path = layer / rel
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, spec.UID, spec.UID)
        path.chmod(0o750)

    def _finish(
        self, name: str, layer: Path, config: ImageConfig, sbom: dict[str, object]
    ) -> ImageResult:
        sbom.setdefault("metadata", {})
        meta = sbom["metadata"]
        assert isinstance(meta, dict)
        meta["component"] = {
            "type": "container",
            "bom-ref": f"image:{name}",
            "name": name,
            "version": config.version or self.version,
            "properties": [{"name": "holdfast:revision", "value": self.revision}],
        }
        text = json.dumps(sbom, indent=2, sort_keys=True) + "\n"
        (layer / spec.SBOM_PATH).write_text(text)
        (self.out / f"{name}.cdx.json").write_text(text)
        self.say(name, "layer")
        oci.insert(self.layout, "base", layer, "/", self.epoch, new_tag=name)
        found = spec.labels(
            config,
            version=self.version,
            revision=self.revision,
            source=self.source,
            epoch=self.epoch,
        )
        user = f"{spec.UID}:{spec.UID}"
        oci.configure(self.layout, name, config, found, self.epoch, user)
        tag = config.version or self.version
        archive = self.out / f"{name}.oci.tar"
        self.say(name, f"archive {archive.name}")
        # the reference names the image too, so `podman load` / `skopeo copy` keep the name
        oci.write_archive(self.layout, name, f"{name}:{tag}", archive, self.epoch)
        size, layers = oci.image_size(self.layout, name)
        digest = str(oci.manifest_descriptor(self.layout, name)["digest"])
        self.say(name, f"{digest} ({size / 1e6:.0f} MB compressed)")
        return ImageResult(
            name, tag, digest, archive.name, oci.sha256_of(archive), size, layers, found
        )

    def _sbom(self, extra: list[dict[str, object]]) -> dict[str, object]:
        return {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "components": [*spec.deb_components(self.debs), *extra],
        }

    def _bin_dir(self) -> Path:
        return self.opts.bin_dir or Path(sys.prefix) / "bin"

    def _binary(self, name: str, binary: str, config: ImageConfig, data: str) -> ImageResult:
        source = self._bin_dir() / binary
        if not source.is_file():
            raise ImagesError(f"{name}: no {source} (run: make setup)")
        stamp = source.parent / f".{binary}.version"
        version = stamp.read_text().strip() if stamp.is_file() else "unknown"
        layer = self._layer_dir(name)
        self.say(name, f"{binary} {version}")
        (layer / "usr/local/bin").mkdir(parents=True)
        shutil.copy2(source, layer / "usr/local/bin" / binary)
        (layer / "usr/local/bin" / binary).chmod(0o755)
        self._data_dir(layer, data.lstrip("/"))
        component: dict[str, object] = {
            "type": "application",
            "bom-ref": f"binary:{binary}",
            "name": binary,
            "version": version,
            "hashes": [{"alg": "SHA-256", "content": oci.sha256_of(source)}],
            "licenses": [{"license": {"id": config.licenses}}],
        }
        semver = version.split("+")[0].lstrip("v")
        cfg = dataclasses.replace(config, version=semver)
        return self._finish(name, layer, cfg, self._sbom([component]))

    def weaviate(self) -> ImageResult:
        config = ImageConfig(
            entrypoint=("/usr/local/bin/weaviate-server",),
            cmd=("--host", "0.0.0.0", "--port", "8080", "--scheme", "http"),
            env=(
                "PERSISTENCE_DATA_PATH=/var/lib/weaviate",
                "DEFAULT_VECTORIZER_MODULE=none",
                "CLUSTER_HOSTNAME=node1",
            ),
            workdir="/var/lib/weaviate",
            ports=("8080/tcp", "50051/tcp"),
            volumes=("/var/lib/weaviate",),
            licenses="BSD-3-Clause",
            title="holdfast-weaviate",
            description="Weaviate built from its pinned Go sources, on a Debian base",
        )
        return self._binary(spec.WEAVIATE, "weaviate-server", config, "/var/lib/weaviate")

    def ollama(self) -> ImageResult:
        config = ImageConfig(
            entrypoint=("/usr/local/bin/ollama",),
            cmd=("serve",),
            env=(
                "OLLAMA_HOST=0.0.0.0:11434",
                "OLLAMA_MODELS=/var/lib/ollama/models",
                "HOME=/var/lib/ollama",
            ),
            workdir="/var/lib/ollama",
            ports=("11434/tcp",),
            volumes=("/var/lib/ollama",),
            licenses="MIT",
            title="holdfast-ollama",
            description="Ollama built from its pinned Go sources (CPU), on a Debian base",
        )
        return self._binary(spec.OLLAMA, "ollama", config, "/var/lib/ollama")

    def gateway(self, base_root: Path) -> ImageResult:
        layer = self._layer_dir(spec.GATEWAY)
        inputs = GatewayInputs(
            self.src, self.work, self.log, self.opts.wheel_cache, self.opts.download, self.epoch
        )
        config, sbom = gateway_layer(inputs, base_root, layer, self.debs, self.say)
        self._data_dir(layer, spec.HOLDFAST_HOME.lstrip("/"))
        return self._finish(spec.GATEWAY, layer, config, sbom)

    def vllm(self, base_root: Path) -> ImageResult:
        layer = self._layer_dir(spec.VLLM)
        inputs = VllmInputs(
            self.src, self.work, self.log, self.opts.wheel_cache, self.opts.download, self.epoch
        )
        config, sbom = vllm_layer(inputs, base_root, layer, self.debs, self.say)
        return self._finish(spec.VLLM, layer, config, sbom)

    def models(self) -> ImageResult:
        from services.onnx_embedder import resolve_models_dir

        layer = self._layer_dir(spec.MODELS)
        models_dir = self.opts.models_dir or resolve_models_dir(os.environ)
        lock = self.src / "offline_wheels" / "requirements.lock"
        config, components = models_layer(layer, models_dir, self.opts.wheel_cache, lock, self.say)
        return self._finish(spec.MODELS, layer, config, self._sbom(components))


def build(opts: BuildOptions, say: Progress = lambda _s, _d: None) -> BuildResult:
    """Build ``opts.images`` into ``opts.out_dir``; returns digests and sizes (also written to
    ``images.json`` there)."""
    preflight(opts.images)
    started = time.monotonic()
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    b = _Build(opts, say)
    try:
        b.prepare()
        base_root = b.base()
        results: list[ImageResult] = []
        if spec.WEAVIATE in opts.images:
            results.append(b.weaviate())
        if spec.OLLAMA in opts.images:
            results.append(b.ollama())
        if spec.MODELS in opts.images:
            results.append(b.models())
        if spec.GATEWAY in opts.images:
            results.append(b.gateway(base_root))
        if spec.VLLM in opts.images:
            results.append(b.vllm(base_root))
    except oci.OciError as exc:
        raise ImagesError(str(exc)) from exc
    result = BuildResult(b.revision, b.epoch, round(time.monotonic() - started, 1), results)
    summary = {
        "revision": result.revision,
        "source_date_epoch": result.epoch,
        "images": [
            {
                "name": r.name,
                "tag": r.tag,
                "digest": r.digest,
                "archive": r.archive,
                "archive_sha256": r.archive_sha256,
                "size_bytes": r.size_bytes,
                "layers": r.layers,
            }
            for r in results
        ],
    }
    (b.out / "images.json").write_text(json.dumps(summary, indent=2) + "\n")
    if opts.keep_layout:
        target = b.out / "oci"
        if target.exists():
            shutil.rmtree(target)
        os.rename(b.layout, target)
    shutil.rmtree(b.work)
    return result
