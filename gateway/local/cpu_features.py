"""The CPU features the local LLM server's kernels use, read from its own log.

Ollama's runner logs one ``msg=system`` line per model load, listing what its CPU backend was
built with and the CPU supports (``CPU.0.AVX2=1 ...``). A build without SIMD lists only
``LLAMAFILE``, and generates 3-5x slower; ``holdfast status`` shows the line so that an operator
sees which build runs without reading logs.
"""

from __future__ import annotations

import re
from pathlib import Path

_SYSTEM_LINE = re.compile(r"msg=system\b(?P<rest>.*)$")
_FEATURE = re.compile(r"\bCPU\.\d+\.(?P<name>[A-Z0-9_]+)=1\b")
SIMD = frozenset({"AVX", "AVX2", "AVX512", "FMA", "F16C"})
_TAIL_BYTES = 4 << 20  # the last model load is near the end; a long log is not read whole


def features_in_line(line: str) -> list[str] | None:
    """The CPU features a ``msg=system`` line lists, in its order; None for any other line."""
    match = _SYSTEM_LINE.search(line)
    if match is None:
        return None
    return list(dict.fromkeys(m.group("name") for m in _FEATURE.finditer(match.group("rest"))))


def llm_cpu_features(log_path: Path) -> list[str] | None:
    """The features of the newest model load logged in ``log_path``; None when the server has
    not loaded a model since its log began (or there is no log)."""
    try:
        with log_path.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(0, size - _TAIL_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        found = features_in_line(line)
        if found is not None:
            return found
    return None


def describe(features: list[str] | None) -> str:
    """One line for ``holdfast status``."""
    if features is None:
        return "not logged yet (the LLM server logs them when it first loads a model)"
    simd = [f for f in features if f in SIMD]
    if not simd:
        return (
            " ".join(features) + " - no SIMD: this build generates several times slower; "
            "rebuild with scripts/install-services.sh on a CPU with AVX2"
        )
    return " ".join(features)
