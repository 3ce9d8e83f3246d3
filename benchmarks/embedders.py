"""Embedding speed of the in-process embedders on real documentation (a report, not a test).

Text: the Python 3.11 documentation HTML from Debian's ``python3.11-doc`` package, tags stripped,
cut into passages of ``--words`` words (150 words is about 200 word-pieces, the default chunk
budget); queries are the docs' own section headings. Embedders, all on this CPU in one process:
through ``services.onnx_embedder`` every ONNX model installed by ``scripts/install-models.sh``
(MiniLM fp32, which serves ``local/all-MiniLM-L6-v2``, MiniLM int8, bge-small-en-v1.5 int8 and
fp32, e5-small-v2 int8), and with ``--st-model FOLDER`` a sentence-transformers folder on torch
(needs the optional extra ``holdfast[sentence-transformers]``; it then goes first).

Runs are interleaved (passage rounds and single queries take turns across the embedders) so a
busy machine slows each of them alike; ratios are against the first embedder of the same run.
A tiny sanity retrieval check (module pages' one-line summaries as queries, page hit@1 and MRR
over those pages' passages) is printed alongside; retrieval quality proper is the eval set's job.
Writes benchmarks/reports/embedders-<UTC time>.md.

    .venv/bin/python -m benchmarks.embedders --passages 256 --queries 100
"""

from __future__ import annotations

import argparse
import html
import os
import platform
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from services.onnx_embedder import ONNX_MODELS, OnnxEmbedder, resolve_models_dir

REPORTS = Path(__file__).parent / "reports"
DOCS = Path("/usr/share/doc/python3.11/html")
SECTIONS = ("library", "tutorial", "howto", "reference", "faq", "using", "extending", "c-api")
ONNX_ORDER = [
    "all-minilm-l6-v2",
    "all-minilm-l6-v2-q",
    "bge-small-en-v1.5-q",
    "bge-small-en-v1.5",
    "e5-small-v2-q",
]


class Embedder(Protocol):
    def warm_up(self) -> None: ...
    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...
    def embed_query(self, text: str) -> list[float]: ...


@dataclass
class Page:
    path: Path
    title: str
    text: str
    headings: list[str]


@dataclass
class Result:
    label: str
    embedder: Embedder
    load_s: float = 0.0
    passage_s: float = 0.0
    query_ms: list[float] = field(default_factory=list)
    hit1: float = 0.0
    mrr: float = 0.0


_BLOCK = re.compile(r"</?(p|div|h[1-6]|li|dt|dd|pre|tr|table|section|br)\b[^>]*>", re.I)


def _clean(fragment: str) -> str:
    text = _BLOCK.sub("\n", fragment)
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).replace("¶", "")
    return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n", text)).strip()


def read_page(path: Path) -> Page | None:
    """The page's main body as text (navigation, sidebar and footer left out)."""
    raw = path.read_text(encoding="utf-8", errors="replace")
    start = raw.find('role="main"')
    if start < 0:
        return None
    end = raw.find('<div class="sphinxsidebar"', start)
    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", "", raw[start : end if end > 0 else None])
    headings = [_clean(h) for h in re.findall(r"(?is)<h[1-3][^>]*>(.*?)</h[1-3]>", body)]
    headings = [h for h in headings if 3 <= len(h.split()) <= 16]
    title = _clean(m.group(1)) if (m := re.search(r"(?is)<h1[^>]*>(.*?)</h1>", body)) else ""
    body = re.sub(r"(?is)<h1[^>]*>.*?</h1>", "", body, count=1)
    text = _clean(body.partition(">")[2])
    return Page(path, title, text, headings) if len(text.split()) >= 50 else None


def load_pages(root: Path) -> list[Page]:
    files = sorted(p for s in SECTIONS for p in (root / s).rglob("*.html"))
    return [page for f in files if (page := read_page(f)) is not None]


def windows(text: str, words: int) -> list[str]:
    tokens = text.split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def build_embedders(
    threads: int, batch: int, models_dir: Path, st_model: Path | None = None
) -> list[Result]:
    results: list[Result] = []
    if st_model is not None:
        try:
            import torch
        except ImportError as exc:
            raise SystemExit(
                f"--st-model needs sentence-transformers and torch ({exc}): "
                "install the optional extra holdfast[sentence-transformers]"
            ) from exc
        from services.local_embedder import LocalEmbedder

        torch.set_num_threads(threads)
        results.append(
            Result(
                f"{st_model.name}, sentence-transformers",
                LocalEmbedder(st_model, batch_size=batch),
            )
        )
    labels = {
        "all-minilm-l6-v2": "MiniLM-L6-v2, ONNX fp32 (local/all-MiniLM-L6-v2)",
        "all-minilm-l6-v2-q": "MiniLM-L6-v2, ONNX int8",
        "bge-small-en-v1.5-q": "bge-small-en-v1.5, ONNX int8",
        "bge-small-en-v1.5": "bge-small-en-v1.5, ONNX fp32",
        "e5-small-v2-q": "e5-small-v2, ONNX int8",
    }
    for name in ONNX_ORDER:
        spec = ONNX_MODELS[name]
        if not (models_dir / name / spec.model_file).is_file():
            print(f"skipping {name}: not installed in {models_dir}")
            continue
        onnx = OnnxEmbedder(spec, models_dir / name, batch_size=batch, intra_op_threads=threads)
        results.append(Result(labels[name], onnx))
    return results


def interleaved(results: list[Result], step: Callable[[Result, int], None], rounds: int) -> None:
    """``step(result, round)`` for every embedder in every round, rotating who goes first."""
    for r in range(rounds):
        for k in range(len(results)):
            step(results[(r + k) % len(results)], r)


def sanity(results: list[Result], pages: list[Page], words: int, rng: random.Random, n: int) -> int:
    """Module pages: query = the summary after the title's dash; gold = that page's passages."""
    module_pages = [
        p for p in pages if p.path.parent.name == "library" and " — " in p.title and p.text
    ]
    picked = rng.sample(module_pages, min(n, len(module_pages)))
    queries = [p.title.split(" — ", 1)[1] for p in picked]
    owner: list[int] = []
    passages: list[str] = []
    for i, page in enumerate(picked):
        for passage in windows(page.text, words)[:3]:
            owner.append(i)
            passages.append(passage)
    owners = np.asarray(owner)
    for res in results:
        docs = np.asarray(res.embedder.embed_documents(passages))
        ranks = []
        for i, query in enumerate(queries):
            scores = docs @ np.asarray(res.embedder.embed_query(query))
            page_scores = np.full(len(picked), -np.inf)
            np.maximum.at(page_scores, owners, scores)
            ranks.append(1 + int((page_scores > page_scores[i]).sum()))
        res.hit1 = sum(r == 1 for r in ranks) / len(ranks)
        res.mrr = sum(1.0 / r if r <= 10 else 0.0 for r in ranks) / len(ranks)
    return len(picked)


def token_stats(texts: Sequence[str], models_dir: Path) -> str:
    spec = ONNX_MODELS["bge-small-en-v1.5-q"]
    path = models_dir / spec.name / spec.tokenizer_file
    if not path.is_file():
        return ""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    counts = [len(e.ids) for e in tokenizer.encode_batch(list(texts))]
    over = sum(c > 256 for c in counts) / len(counts)
    return (
        f"Word-pieces per passage (BERT uncased vocabulary, shared by all five models, specials "
        f"included): mean {np.mean(counts):.0f}, p95 {percentile(counts, 95):.0f}, max "
        f"{max(counts)}; {over:.0%} exceed MiniLM's 256-piece window (bge/e5: 512)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=256)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--words", type=int, default=150, help="words per passage")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved passage rounds")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sanity-pages", type=int, default=60)
    parser.add_argument("--docs", type=Path, default=DOCS)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument(
        "--st-model",
        type=Path,
        default=None,
        help="a sentence-transformers model folder to compare (needs the optional extra)",
    )
    args = parser.parse_args()

    rng = random.Random(args.seed)
    models_dir = resolve_models_dir(os.environ)
    pages = load_pages(args.docs)
    all_passages = [w for p in pages for w in windows(p.text, args.words)]
    passages = rng.sample(all_passages, min(args.passages, len(all_passages)))
    headings = sorted({h for p in pages for h in p.headings})
    queries = rng.sample(headings, min(args.queries, len(headings)))
    load_before = os.getloadavg()

    results = build_embedders(args.threads, args.batch, models_dir, args.st_model)
    for res in results:
        started = time.perf_counter()
        res.embedder.warm_up()
        res.load_s = time.perf_counter() - started
        res.embedder.embed_documents(passages[:8])  # first-run allocations out of the timing
        for q in queries[:5]:
            res.embedder.embed_query(q)
        print(f"loaded {res.label} in {res.load_s:.1f}s")

    per_round = -(-len(passages) // args.rounds)

    def passage_round(res: Result, r: int) -> None:
        chunk = passages[r * per_round : (r + 1) * per_round]
        started = time.perf_counter()
        res.embedder.embed_documents(chunk)
        res.passage_s += time.perf_counter() - started

    def query_step(res: Result, i: int) -> None:
        started = time.perf_counter()
        res.embedder.embed_query(queries[i])
        res.query_ms.append((time.perf_counter() - started) * 1000)

    interleaved(results, passage_round, args.rounds)
    interleaved(results, query_step, len(queries))
    sanity_n = sanity(results, pages, args.words, rng, args.sanity_pages)

    write_report(args, results, passages, queries, pages, models_dir, sanity_n, load_before)


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("onnxruntime", "tokenizers", "torch", "sentence-transformers", "numpy"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def _size(res: Result) -> str:
    if isinstance(res.embedder, OnnxEmbedder):
        spec = res.embedder.spec
        folder = res.embedder._model_dir  # the benchmark may peek
        return f"{(folder / spec.model_file).stat().st_size / 1e6:.0f} MB"
    folder = getattr(res.embedder, "_model_path", None)
    files = list(folder.glob("*.safetensors")) if folder else []
    return f"{sum(f.stat().st_size for f in files) / 1e6:.0f} MB (safetensors)" if files else "?"


def write_report(
    args: Any,
    results: list[Result],
    passages: list[str],
    queries: list[str],
    pages: list[Page],
    models_dir: Path,
    sanity_n: int,
    load_before: tuple[float, float, float],
) -> None:
    now = datetime.now(UTC)
    la, lb = os.getloadavg(), load_before
    base = results[0]
    lines = [
        f"# Embedder speed — {now.isoformat(timespec='seconds')}",
        "",
        f"Machine: {os.cpu_count()} cores ({platform.machine()}), CPU only, Python "
        f"{platform.python_version()}; {_versions()}. Load average (1/5/15 min) before: "
        f"{lb[0]:.1f} / {lb[1]:.1f} / {lb[2]:.1f}, after: "
        f"{la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f}. {args.threads} threads for every embedder "
        f"(torch intra-op / onnxruntime intra-op), batches of {args.batch}.",
        "",
        f"Text: {len(pages)} pages of the Python 3.11 docs ({args.docs}), tags stripped; "
        f"{len(passages)} random passages of {args.words} words; {len(queries)} random section "
        "headings as queries, embedded one at a time. Passage rounds "
        f"({args.rounds}) and queries alternate between the embedders. Ratios are against "
        f"`{base.label}` in this run (passages/s: higher is faster; query p50: lower is "
        "faster).",
        "",
        token_stats(passages, models_dir),
        "",
        "| embedder | file | load s | passages/s | ratio | query p50 ms | p95 | p99 "
        "| p50 ratio | sanity hit@1 | sanity MRR@10 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base_rate = len(passages) / base.passage_s
    base_p50 = percentile(base.query_ms, 50)
    for res in results:
        rate = len(passages) / res.passage_s
        p50 = percentile(res.query_ms, 50)
        lines.append(
            f"| {res.label} | {_size(res)} | {res.load_s:.1f} | {rate:.1f} | "
            f"{rate / base_rate:.2f} | {p50:.1f} | {percentile(res.query_ms, 95):.1f} | "
            f"{percentile(res.query_ms, 99):.1f} | {p50 / base_p50:.2f} | {res.hit1:.2f} | "
            f"{res.mrr:.2f} |"
        )
    lines += [
        "",
        f"Sanity check: {sanity_n} library module pages; query = the one-line summary in the "
        "page title (e.g. “Generate pseudo-random numbers”), title removed from the page text; "
        "the page ranks by its best of its first three passages. A smoke test of the pipelines "
        "(prefix, pooling), not a quality measurement: the Python-docs eval set is.",
        "",
        "Reproduce: `.venv/bin/python -m benchmarks.embedders "
        f"--passages {args.passages} --queries {args.queries} --words {args.words} "
        f"--rounds {args.rounds} --batch {args.batch} --threads {args.threads} "
        f"--seed {args.seed}` after `scripts/install-models.sh` with "
        "`HOLDFAST_ONNX_MODELS=all`.",
        "",
    ]
    REPORTS.mkdir(exist_ok=True)
    out = REPORTS / f"embedders-{now.strftime('%Y%m%dT%H%M%SZ')}.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
