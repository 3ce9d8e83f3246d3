"""HTML parsing and chunking report on the Python docs (not a timed test).

Parses every page of the Python 3.11 docs (Debian's python3.11-doc) through the product's parser
(``ingestion.parsing.parse_file``: main content only, then unstructured), then chunks each page
as ``ingestion.pipeline.build_chunks`` does, at one or more token budgets, counting word-pieces
with a BERT uncased tokenizer (all-MiniLM-L6-v2's, from its ONNX folder in the models dir;
bge-small-en-v1.5 has the same vocabulary). Reports pages/s, sections, blocks by kind, how many
sections fit a budget whole, the cost of the title/section heading, chunks per budget, and chunks
whose embedded text holds a navigation chrome string (must be 0). Writes
benchmarks/reports/html-parsing-<UTC>.md.

    .venv/bin/python -m benchmarks.html_parsing [--budgets 200,256,384,510] [--window 512]
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.html_extractors import CHROME, DOCS, REPORTS, sphinx_reference
from ingestion.chunking import SPECIAL_TOKENS, chunk_sections, is_noise, window_budget
from ingestion.embedding import embedding_heading, embedding_text
from ingestion.markdown_sections import ParsedDocument
from ingestion.parsing import parse_file
from ingestion.validation import Limits


def minilm_tokenizer_path() -> Path:
    """all-MiniLM-L6-v2's tokenizer.json, from its ONNX folder in the models dir."""
    from services.onnx_embedder import ONNX_MODELS, resolve_models_dir

    spec = ONNX_MODELS["all-minilm-l6-v2"]
    path = resolve_models_dir(os.environ) / spec.name / spec.tokenizer_file
    if not path.is_file():
        raise SystemExit(f"no {path} (run scripts/install-models.sh, or pass --tokenizer)")
    return path


def token_counter(tokenizer_json: Path) -> Callable[[str], int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_truncation()  # the packaged file pads and truncates to 128
    tokenizer.no_padding()

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _chrome_left(embedded: str, reference: str) -> list[str]:
    """Chrome strings in a chunk that the page's own body does not hold. Strings with a pipe
    are not looked for in Markdown table rows, whose cell separators make "modules |" of a
    cell that ends in "modules"."""
    prose = "\n".join(line for line in embedded.splitlines() if not line.startswith("|"))
    return [s for s in CHROME if s in (prose if "|" in s else embedded) and s not in reference]


Parsed = tuple[list[tuple[Path, ParsedDocument]], list[str], float, float, str]


def _parse_all(pages: list[Path], cache: Path | None) -> Parsed:
    """(parsed pages, refused pages, parse seconds, warm-up seconds, when) — from ``cache`` when
    it exists (the timing is then the one of the run that filled it)."""
    if cache is not None and cache.is_file():
        with cache.open("rb") as fh:
            loaded: Parsed = pickle.load(fh)
            return loaded
    # warm up: unstructured loads its spaCy model on the first HTML page (seconds, once)
    started = time.perf_counter()
    parse_file(pages[0], "html", name=pages[0].name, limits=Limits())
    warm_up_s = time.perf_counter() - started
    parsed: list[tuple[Path, ParsedDocument]] = []
    rejected: list[str] = []
    started = time.perf_counter()
    for path in pages:
        try:
            parsed.append(
                (path, parse_file(path, "html", name=path.name, limits=Limits()).document)
            )
        except Exception as exc:  # a page the parser refuses is reported, not fatal
            rejected.append(f"{path.name} ({type(exc).__name__}: {exc})")
    parse_s = time.perf_counter() - started
    result = (parsed, rejected, parse_s, warm_up_s, f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    if cache is not None:
        with cache.open("wb") as fh:
            pickle.dump(result, fh)
    return result


def _pct(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--limit", type=int, default=0, help="first N pages only (0: all)")
    parser.add_argument("--budgets", default="128,200,256,384,510")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--window", type=int, default=512, help="the embedder's input window")
    parser.add_argument("--tokenizer", type=Path, default=None, help="a tokenizer.json")
    parser.add_argument(
        "--cache", type=Path, default=None, help="pickle of the parsed pages, reused if present"
    )
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

    pages = sorted(args.docs.rglob("*.html"))
    if args.limit:
        pages = pages[: args.limit]
    budgets = [int(b) for b in args.budgets.split(",")]
    tokenizer_json = args.tokenizer or minilm_tokenizer_path()
    count = token_counter(tokenizer_json)

    parsed, rejected, parse_s, warm_up_s, parsed_at = _parse_all(pages, args.cache)

    kinds: Counter[str] = Counter()
    section_tokens: list[int] = []
    heading_tokens: list[int] = []
    empty: list[str] = []
    for path, doc in parsed:
        if not doc.sections:
            empty.append(str(path.relative_to(args.docs)))
        for section in doc.sections:
            kinds.update(b.kind for b in section.blocks)
            section_tokens.append(count("\n\n".join(b.text for b in section.blocks)))
            heading_tokens.append(count(embedding_heading(doc.title, section.heading)))
    references = {path: sphinx_reference(path.read_bytes()).text for path, _ in parsed}

    rows = []
    chrome_examples: list[str] = []
    for budget in budgets:
        limit = window_budget(budget, args.window)
        chunks = 0
        sizes: list[int] = []
        over_window = 0
        chrome_chunks = 0
        noise_chunks = 0
        chunk_started = time.perf_counter()
        for path, doc in parsed:
            pieces = chunk_sections(
                doc.sections,
                max_tokens=limit,
                overlap_tokens=min(args.overlap, limit // 4),
                count=count,
                prefix=lambda s, title=doc.title: embedding_heading(title, s.heading),
            )
            reference = references[path]
            for piece in pieces:
                embedded = embedding_text(doc.title, piece.section.heading, piece.text)
                size = count(embedded)
                sizes.append(size)
                over_window += size + SPECIAL_TOKENS > args.window
                noise_chunks += is_noise(piece.text)
                left = _chrome_left(embedded, reference)
                if left:
                    chrome_chunks += 1
                    if len(chrome_examples) < 10:
                        chrome_examples.append(f"{path.relative_to(args.docs)}: {left}")
            chunks += len(pieces)
        chunk_s = time.perf_counter() - chunk_started
        rows.append(
            f"| {budget} | {limit} | {chunks:,} | {chunks / max(len(parsed), 1):.1f} "
            f"| {statistics.mean(sizes) if sizes else 0:.0f} | {_pct(sizes, 0.5)} "
            f"| {_pct(sizes, 0.95)} | {max(sizes, default=0)} | {over_window} "
            f"| {noise_chunks} | {chrome_chunks} | {chunk_s:.1f} |"
        )
        print(rows[-1], flush=True)

    n_sections = len(section_tokens)
    whole = zip(section_tokens, heading_tokens, strict=True)
    totals = [body + heading for body, heading in whole]
    fits = " / ".join(
        f"{b}: {sum(t <= window_budget(b, args.window) for t in totals) / max(n_sections, 1):.0%}"
        for b in budgets
    )
    now = datetime.now(UTC)
    lines = [
        f"# HTML parsing on the Python docs — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end (shared machine). "
        f"One process. Tokenizer: `{tokenizer_json.name}` (BERT uncased word-pieces).",
        "",
        "## Parsing (`ingestion.parsing.parse_file`, doc type html)",
        "",
        f"- pages: {len(pages)} from {args.docs}; parsed {len(parsed)}, refused {len(rejected)}",
        f"- time: {parse_s:.1f} s, **{len(parsed) / parse_s:.2f} pages/s** "
        f"({1000 * parse_s / max(len(parsed), 1):.0f} ms a page), after a one-off warm-up of "
        f"{warm_up_s:.1f} s (unstructured loads its spaCy model); parsed {parsed_at}",
        f"- sections: {n_sections:,} ({n_sections / max(len(parsed), 1):.1f} a page); pages with "
        f"no content left: {len(empty)}",
        f"- blocks: {', '.join(f'{k} {n:,}' for k, n in kinds.most_common())}",
        f"- section size in word-pieces: median {_pct(section_tokens, 0.5)}, p90 "
        f"{_pct(section_tokens, 0.9)}, p99 {_pct(section_tokens, 0.99)}, max "
        f"{max(section_tokens, default=0)}",
        f"- title/section heading line in word-pieces: median {_pct(heading_tokens, 0.5)}, p95 "
        f"{_pct(heading_tokens, 0.95)}, max {max(heading_tokens, default=0)}",
        f"- sections that fit one chunk whole (heading included), by budget: {fits}",
        "",
        f"## Chunks (window {args.window}, overlap {args.overlap} capped at a quarter of the "
        "budget; sizes are of the embedded text: heading line + body)",
        "",
        "| budget | effective | chunks | per page | mean tokens | median | p95 | max "
        "| over window | noise-only | with chrome | chunking s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        "Chrome strings searched in each chunk's embedded text (a string the page's own body "
        "holds does not count; strings with a pipe are not looked for in Markdown table rows): "
        + ", ".join(f"`{s}`" for s in CHROME)
        + ".",
    ]
    if chrome_examples:
        lines += ["", "Chunks with chrome:", *(f"- {e}" for e in chrome_examples)]
    if empty:
        lines += ["", "Pages with no content left (link lists only): " + ", ".join(empty)]
    if rejected:
        lines += ["", "Refused pages:", *(f"- {r}" for r in rejected[:20])]
    REPORTS.mkdir(exist_ok=True)
    out = REPORTS / f"html-parsing-{now:%Y%m%dT%H%M%SZ}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
