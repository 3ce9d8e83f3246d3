"""The LLM server's CPU features as `holdfast status` reads them from its log."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.local.cpu_features import describe, features_in_line, llm_cpu_features

pytestmark = pytest.mark.unit

SIMD_LINE = (
    "time=2026-12-03T10:05:05.711Z level=INFO source=ggml.go:104 msg=system CPU.0.SSE3=1 "
    "CPU.0.SSSE3=1 CPU.0.AVX=1 CPU.0.AVX2=1 CPU.0.F16C=1 CPU.0.FMA=1 CPU.0.BMI2=1 "
    "CPU.0.LLAMAFILE=1 compiler=cgo(gcc)"
)
PLAIN_LINE = (
    "time=2026-12-01T09:00:00.000Z level=INFO source=ggml.go:104 msg=system "
    "CPU.0.LLAMAFILE=1 compiler=cgo(gcc)"
)


def test_the_newest_model_load_wins(tmp_path: Path) -> None:
    log = tmp_path / "ollama.log"
    log.write_text(f"{PLAIN_LINE}\nserving\n{SIMD_LINE}\nrequest done\n", encoding="utf-8")
    assert llm_cpu_features(log) == [
        "SSE3",
        "SSSE3",
        "AVX",
        "AVX2",
        "F16C",
        "FMA",
        "BMI2",
        "LLAMAFILE",
    ]
    assert describe(llm_cpu_features(log)).startswith("SSE3 SSSE3 AVX AVX2")


def test_a_build_without_simd_is_called_out(tmp_path: Path) -> None:
    assert features_in_line(PLAIN_LINE) == ["LLAMAFILE"]
    assert "no SIMD" in describe(["LLAMAFILE"])


def test_no_model_loaded_yet_or_no_log(tmp_path: Path) -> None:
    log = tmp_path / "ollama.log"
    log.write_text('level=INFO msg="Listening on 127.0.0.1:11434"\n', encoding="utf-8")
    assert llm_cpu_features(log) is None
    assert llm_cpu_features(tmp_path / "missing.log") is None
    assert describe(None).startswith("not logged yet")
    assert features_in_line("msg=systemd started") is None
