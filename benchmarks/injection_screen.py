"""The injection screen (gateway/query/injection.py) on real and hostile text; no services.

- Recall: the 35 ingested variants (tests/fixtures/injection) and 20 held-out phrasings
  (tests/fixtures/injection_heldout), share whose code word is cut out.
- False positives: every sentence of the Python 3.11 docs (the hard eval corpus) that the screen
  would cut, listed, and per MB of text. None of that corpus is an instruction to a model.
- Cost per passage: 1,500-character windows of the docs, p50/p95/p99 of ``neutralize`` with the
  screen against the same call without it (the baseline), measured in one run.

Writes benchmarks/reports/injection-screen-<UTC time>.md.

    .venv/bin/python -m benchmarks.injection_screen [--windows 3000] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.python_docs import corpus
from gateway.query import prompt
from gateway.query.injection import fold, instruction_start, marks, screen, segments

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"
REPORTS = Path(__file__).parent / "reports"
WINDOW_CHARS = 1500


def _recall_on_variants() -> tuple[int, int]:
    variants = json.loads((FIXTURES / "injection" / "manifest.json").read_text())
    cut = sum(
        v["canary"] not in screen((FIXTURES / "injection" / v["file"]).read_text("utf-8")).text
        for v in variants
    )
    return cut, len(variants)


def _recall_on_held_out() -> tuple[int, int, list[str]]:
    lines = [
        line
        for line in (FIXTURES / "injection_heldout" / "phrasings.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    missed = [
        line
        for line in lines
        if re.findall(r"[A-Z\u0410-\u042f]{4,}", line)[-1] in screen(line).text
    ]
    return len(lines) - len(missed), len(lines), missed


def _flagged_sentences(pages: Sequence[corpus.Page]) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for page in pages:
        for segment, _ in segments(fold(page.text)):
            segment = segment.rstrip()
            if instruction_start(segment) is not None:
                found.append((page.page_id, ",".join(sorted(marks(segment))), segment[:140]))
    return found


def _timed(fn: Callable[[str], str], windows: Sequence[str]) -> list[float]:
    out = []
    for window in windows:
        start = time.perf_counter()
        fn(window)
        out.append((time.perf_counter() - start) * 1000)
    return out


def _without_screen(text: str) -> str:
    text = prompt._FENCE_LIKE.sub("[tag removed]", text)
    text = prompt._TEMPLATE_TOKEN.sub("[token removed]", text)
    return prompt._ROLE_LINE.sub(lambda m: m.group(0).replace(":", " -"), text)


def _quantiles(ms: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(ms, n=100)
    return q[49], q[94], q[98]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=3000, help="passages timed (default 3000)")
    parser.add_argument("--no-write", action="store_true", help="print the report only")
    args = parser.parse_args(argv)

    root = corpus.docs_root()
    pages = corpus.load_pages(root, corpus.page_ids(root))
    megabytes = sum(len(p.text.encode()) for p in pages) / 1e6
    flagged = _flagged_sentences(pages)
    variants_cut, variants = _recall_on_variants()
    held_cut, held, missed = _recall_on_held_out()
    windows = [
        p.text[i : i + WINDOW_CHARS] for p in pages for i in range(0, len(p.text), WINDOW_CHARS)
    ][: args.windows]
    # interleaved: baseline and screened in alternating rounds, so load hits both alike
    base: list[float] = []
    full: list[float] = []
    for i in range(0, len(windows), 100):
        base += _timed(_without_screen, windows[i : i + 100])
        full += _timed(prompt.neutralize, windows[i : i + 100])
    b50, b95, b99 = _quantiles(base)
    f50, f95, f99 = _quantiles(full)

    stamp = datetime.now(UTC)
    lines = [
        f"# Injection screen, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"Corpus: Python {corpus.docs_version(root)} docs, {len(pages)} pages, {megabytes:.1f} MB. "
        "Command: `.venv/bin/python -m benchmarks.injection_screen`.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| ingested variants cut (tests/fixtures/injection) | {variants_cut}/{variants} |",
        f"| held-out phrasings cut (never tuned on) | {held_cut}/{held} |",
        f"| docs sentences cut (false positives) | {len(flagged)} "
        f"({len(flagged) / megabytes:.2f} per MB) |",
        f"| `neutralize` per {WINDOW_CHARS}-char passage, p50/p95/p99 ms | "
        f"{f50:.2f} / {f95:.2f} / {f99:.2f} |",
        f"| baseline without the screen, p50/p95/p99 ms | {b50:.2f} / {b95:.2f} / {b99:.2f} |",
        f"| ratio p50 | {f50 / b50:.1f}x ({len(windows)} passages) |",
        "",
        "Held-out phrasings missed:",
        "",
        *[f"- `{line}`" for line in missed],
        "",
        "Docs sentences the screen cuts (all false positives):",
        "",
        *[f"- {page} [{kind}]: `{text}`" for page, kind, text in flagged],
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        REPORTS.mkdir(exist_ok=True)
        path = REPORTS / f"injection-screen-{stamp:%Y%m%dT%H%M%SZ}.md"
        path.write_text(report)
        print(f"written: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
