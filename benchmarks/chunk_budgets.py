"""Which chunk budget retrieves the right Python-docs page best, per embedding model (dense only).

An offline experiment, not the product's end-to-end eval: no Weaviate, no BM25, no redaction. The
pages are parsed by the product's parser (``ingestion.parsing.parse_file``) and chunked as
``ingestion.pipeline.build_chunks`` does (title/section heading in the embedded text, paid for
out of the budget), at each budget; every chunk and question is embedded with an ONNX model of
``services.onnx_embedder``; a page scores its best chunk's cosine; page-level nDCG@10, MRR@10,
hit@1, hit@5 over the answerable questions of ``evals/python_docs`` whose gold pages are all in
the corpus. ``--no-heading`` runs add the same budget with the body alone embedded.

    .venv/bin/python -m benchmarks.chunk_budgets --model bge-small-en-v1.5-q --budgets 256,384,510
    .venv/bin/python -m benchmarks.chunk_budgets --model all-minilm-l6-v2 --budgets 128,200,254
    .venv/bin/python -m benchmarks.chunk_budgets \
        --model all-minilm-l6-v2,bge-small-en-v1.5-q --budgets 200,256   # one table, one run

The corpus is the eval's fast subset (56 pages) unless ``--all`` (497 pages). Parsed pages are
cached under /tmp between runs. Writes benchmarks/reports/chunk-budgets-<model>-<UTC>.md
(``chunk-budgets-<UTC>.md`` for several models, measured one after the other in the one run).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from benchmarks.python_docs.corpus import page_ids
from benchmarks.python_docs.questions import load_fast_pages, load_questions
from gateway.evaluation.metrics import mean, retrieval_metrics
from ingestion.chunking import chunk_sections, window_budget
from ingestion.embedding import embedding_heading, embedding_text
from ingestion.markdown_sections import ParsedDocument
from ingestion.parsing import parse_file
from ingestion.validation import Limits
from services.onnx_embedder import onnx_embedder, resolve_models_dir

DOCS = Path("/usr/share/doc/python3.11/html")
REPORTS = Path(__file__).parent / "reports"


def parsed_pages(ids: list[str]) -> dict[str, ParsedDocument]:
    key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    cache = Path("/tmp") / f"holdfast-parsed-pydocs-{key}.pkl"
    if cache.is_file():
        with cache.open("rb") as fh:
            loaded: dict[str, ParsedDocument] = pickle.load(fh)
            return loaded
    out = {}
    for page in ids:
        path = DOCS / page
        out[page] = parse_file(path, "html", name=path.name, limits=Limits()).document
    with cache.open("wb") as fh:
        pickle.dump(out, fh)
    return out


def chunk_texts(
    docs: dict[str, ParsedDocument], budget: int, overlap: int, count, *, heading: bool
) -> tuple[list[str], list[str]]:
    """(page id, embedded text) of every chunk."""
    pages, texts = [], []
    for page, doc in docs.items():
        pieces = chunk_sections(
            doc.sections,
            max_tokens=budget,
            overlap_tokens=overlap,
            count=count,
            prefix=(lambda s, t=doc.title: embedding_heading(t, s.heading)) if heading else None,
        )
        for piece in pieces:
            pages.append(page)
            texts.append(
                embedding_text(doc.title, piece.section.heading, piece.text)
                if heading
                else piece.text
            )
    return pages, texts


def measure(
    embedder, model: str, docs, questions, query_vectors, budget: int, heading: bool, overlap: int
) -> str:
    """One table row: chunk at ``budget``, embed every chunk, rank pages by best chunk."""
    limit = window_budget(budget, embedder.max_tokens)
    pages, texts = chunk_texts(
        docs, limit, min(overlap, limit // 4), embedder.count_tokens, heading=heading
    )
    t0 = time.perf_counter()
    vectors = np.asarray(embedder.embed_documents(texts))
    embed_s = time.perf_counter() - t0
    scores = query_vectors @ vectors.T
    per_q: dict[str, list[float]] = {}
    for qi, question in enumerate(questions):
        best: dict[str, float] = {}
        for ci in np.argsort(-scores[qi]):
            best.setdefault(pages[ci], float(scores[qi, ci]))
            if len(best) >= 10:
                break
        for name, value in retrieval_metrics(list(best), set(question.gold_pages)).items():
            per_q.setdefault(name, []).append(value)
    m = {name: mean(values) for name, values in per_q.items()}
    return (
        f"| {model} | {budget} | {limit} | {'yes' if heading else 'no'} | {len(texts):,} "
        f"| {m['ndcg@10']:.3f} | {m['mrr@10']:.3f} | {m['hit@1']:.3f} "
        f"| {m['hit@5']:.3f} | {m['recall@10']:.3f} | {embed_s:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bge-small-en-v1.5-q", help="one or a comma list")
    parser.add_argument("--budgets", default="256,384,510")
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--no-heading", default="", help="budgets also run without the heading")
    parser.add_argument("--all", action="store_true", help="all 497 corpus pages")
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")

    ids = page_ids(DOCS) if args.all else load_fast_pages()
    corpus = set(ids)
    questions = [q for q in load_questions() if q.answerable and set(q.gold_pages) <= corpus]
    started = time.perf_counter()
    docs = parsed_pages(sorted(ids))
    parse_s = time.perf_counter() - started

    models = [m for m in args.model.split(",") if m]
    runs = [(int(b), True) for b in args.budgets.split(",")]
    runs += [(int(b), False) for b in args.no_heading.split(",") if b]
    rows, windows = [], []
    for model in models:
        embedder = onnx_embedder(model, resolve_models_dir(os.environ))
        embedder.warm_up()
        windows.append(f"{model} {embedder.max_tokens}")
        query_vectors = np.asarray([embedder.embed_query(q.question) for q in questions])
        for budget, heading in runs:
            rows.append(
                measure(
                    embedder, model, docs, questions, query_vectors, budget, heading, args.overlap
                )
            )
            print(rows[-1], flush=True)

    now = datetime.now(UTC)
    lines = [
        f"# Chunk budgets, dense retrieval only — {', '.join(models)} — {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Corpus: {len(ids)} pages ({'all corpus pages' if args.all else 'the fast subset'}); "
        f"{len(questions)} answerable questions whose gold pages are all in it. Model window "
        f"(word-pieces): {', '.join(windows)}. Overlap {args.overlap} (at most a quarter of the "
        f"budget). Parse "
        f"{parse_s:.0f} s (cached after the first run). Page score: best chunk's cosine. "
        f"{os.cpu_count()} cores, shared, load average "
        f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "",
        "| model | budget | effective | heading embedded | chunks | nDCG@10 | MRR@10 | hit@1 "
        "| hit@5 | recall@10 | embed s |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
    ]
    REPORTS.mkdir(exist_ok=True)
    name = models[0] if len(models) == 1 else None
    out = REPORTS / f"chunk-budgets-{name + '-' if name else ''}{now:%Y%m%dT%H%M%SZ}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
