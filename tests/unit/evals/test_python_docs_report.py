"""The run report: every arm in one table, margins of the product over each baseline, the
ingestion figures, and the JSON with every question's ranking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.python_docs import report
from benchmarks.python_docs.questions import Question
from benchmarks.python_docs.runner import ArmResult, RunResult

pytestmark = pytest.mark.unit

QUESTIONS = [
    Question(
        id="api-001",
        question="functools.lru_cache maxsize",
        style="api",
        gold_pages={"library/functools.html": 2},
        answer_key=["128"],
    ),
    Question(
        id="vag-001",
        question="sorting stuff",
        style="vague",
        gold_pages={"howto/sorting.html": 2, "library/functions.html": 1},
        answer_key=["sorted"],
    ),
    Question(
        id="una-001",
        question="list.sum()",
        style="unanswerable",
        answerable=False,
        absent=["list.sum"],
    ),
]


def _run() -> RunResult:
    bm25 = ArmResult(
        "bm25",
        rankings={
            "api-001": ["library/functools.html"],
            "vag-001": ["library/functions.html", "howto/sorting.html"],
            "una-001": ["library/stdtypes.html"],
        },
        top_scores={"api-001": 9.0, "vag-001": 3.0, "una-001": 4.0},
    )
    product = ArmResult(
        "product",
        rankings={
            "api-001": ["library/os.html", "library/functools.html"],
            "vag-001": [],
            "una-001": [],
        },
        top_scores={"api-001": 0.7, "vag-001": 0.3, "una-001": 0.2},
        statuses={"api-001": "ok", "vag-001": "low_confidence", "una-001": "no_results"},
        latencies_ms=[100.0, 120.0, 80.0],
        ingest={"measured": "in this run", "indexed": 3, "chunks": 30, "seconds": 10.0,
                "pages_per_s": 0.3, "chunks_per_s": 3.0, "redactions": {"PERSON": 2}},
    )  # fmt: skip
    return RunResult(
        fast=True,
        pages=["library/functools.html", "howto/sorting.html", "library/functions.html"],
        questions=QUESTIONS,
        arms={"bm25": bm25, "product": product, "dense": ArmResult("dense", error="not asked")},
        docs_version="3.11.2-test",
        timings_s={"total": 12.0},
        environment={"cpus": 2, "load_average": (1.0, 1.0, 1.0), "product_url": "http://x"},
        windows=10,
        embedding={"raw_windows_per_s": 6.0},
    )


def test_summary_scores_answerable_questions_and_reports_refusals_apart() -> None:
    run = _run()
    bm25, product = run.summary("bm25"), run.summary("product")
    assert bm25["questions_scored"] == 2 and bm25["hit@1"] == 1.0
    assert product["hit@1"] == 0.0 and product["mrr@10"] == pytest.approx(0.25)
    assert product["refused_unanswerable"] == 1.0
    assert product["refused_answerable"] == 0.5
    assert product["latency_p50_ms"] == 100.0
    assert bm25["unanswerable_auroc"] == 0.5  # 9 > 4 but 3 < 4


def test_markdown_has_every_arm_margins_and_ingestion(tmp_path: Path) -> None:
    md_path, json_path = report.write(_run(), "unit", tmp_path)
    md = md_path.read_text(encoding="utf-8")
    bm25_row = next(line for line in md.splitlines() if line.startswith("| bm25 |"))
    assert bm25_row.split(" | ")[3] == "1.000"  # hit@1
    assert "| dense | not run: not asked |" in md
    assert "| product | bm25 | -" in md  # the product is behind BM25 here, and it says so
    assert "| product | this run | 3 | 30 | 10 | 0.30 | 3.0 | 0.50 | PERSON 2 |" in md
    assert "api-001" in md  # a question where the product loses to BM25
    body = json.loads(json_path.read_text(encoding="utf-8"))
    assert body["arms"]["product"]["summary"]["hit@5"] == 0.5
    row = next(r for r in body["per_question"] if r["id"] == "una-001")
    assert row["arms"]["product"]["retrieval_status"] == "no_results"
    assert "metrics" not in row["arms"]["product"]
