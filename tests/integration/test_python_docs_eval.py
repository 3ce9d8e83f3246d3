"""The Python-docs eval harness end to end on its fast subset, against the session's real stack.

The fast pages (evals/python_docs/fast_pages.txt) are uploaded through ``POST /v1/documents`` with
the default settings (redaction on), every fast question goes through ``POST /v1/search`` with a
key that reads only that upload's group, and the outside baselines (BM25, MiniLM, their fusion)
run over the same pages in the same run. This test checks that the harness's outputs are sane and
records the figures, and gates: the product ranks the right pages better than both outside
baselines (nDCG@10 above theirs, hit@5 at least theirs), measured right after its upload.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from benchmarks.python_docs.metrics import METRICS
from benchmarks.python_docs.product import PRODUCT_ARMS, create_query_key
from benchmarks.python_docs.questions import load_fast_pages, load_questions
from benchmarks.python_docs.runner import BASELINE_ARMS, ProductAccess, fast_arm, run
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


def test_fast_subset_scores_every_question_in_every_arm(
    live_stack: LiveStack, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    group = fast_arm(PRODUCT_ARMS["product"], fast=True).group
    key = create_query_key(live_stack.settings.home, "python-docs-eval", group)
    access = ProductAccess(
        url=live_stack.url, ingest_key=live_stack.admin_key, query_keys={"product": key}
    )
    arms = [*BASELINE_ARMS, "product"]

    result = run(arms=arms, fast=True, access=access, progress=lambda *_: None)

    fast_questions = [q for q in load_questions() if q.fast]
    pages = set(load_fast_pages())
    assert [q.id for q in result.questions] == [q.id for q in fast_questions]
    answerable = sum(q.answerable for q in fast_questions)
    summaries = {}
    for arm in arms:
        outcome = result.arms[arm]
        assert outcome.error is None, f"{arm}: {outcome.error}"
        assert set(outcome.rankings) == {q.id for q in fast_questions}, arm
        assert all(set(r) <= pages for r in outcome.rankings.values()), arm
        summary = result.summary(arm)
        assert summary["questions_scored"] == answerable, arm
        for metric in METRICS:
            assert 0.0 <= summary[metric] <= 1.0, (arm, metric)
        summaries[arm] = summary
    # the baselines found something: a question set or a page reader gone wrong scores ~0
    for arm in BASELINE_ARMS:
        assert summaries[arm]["hit@5"] > 0.5, arm
    ingest = result.arms["product"].ingest
    assert ingest is not None and ingest["failed"] == 0, ingest
    assert ingest["indexed"] + ingest["unchanged"] == len(pages)
    assert set(result.arms["product"].statuses) == {q.id for q in fast_questions}

    product = summaries["product"]
    for arm in ("bm25", "hybrid-baseline"):
        assert product["ndcg@10"] > summaries[arm]["ndcg@10"], (arm, summaries)
        assert product["hit@5"] >= summaries[arm]["hit@5"], (arm, summaries)
    figures = {a: {m: round(s[m], 3) for m in METRICS} for a, s in summaries.items()}
    figures["product"]["ingest_pages_per_s"] = ingest.get("pages_per_s")
    record_property("python_docs_fast", json.dumps(figures))
    from benchmarks.python_docs import report

    out = Path(os.environ.get("HOLDFAST_EVAL_REPORTS", str(tmp_path)))
    md, _ = report.write(result, "integration test (session stack)", out)
    print(md.read_text(encoding="utf-8").split("## nDCG@10 by question style")[0])


# Sphinx's page chrome in the Python docs: header and footer bars, the sidebar, the theme switch.
_CHROME_PHRASES = (
    "navigation",
    "index",
    "modules",
    "next",
    "previous",
    "previous topic",
    "next topic",
    "this page",
    "report a bug",
    "show source",
    "quick search",
    "table of contents",
    "theme",
    "auto",
    "light",
    "dark",
    "python",
    "documentation",
    "the python standard library",
    "go",
    # the footer
    "copyright",
    "python software foundation",
    "this page is licensed under the python software foundation license version",
    "examples recipes and other code in the documentation are additionally licensed under the "
    "zero clause bsd license",
    "see history and license for more information",
    "the python software foundation is a non profit corporation please donate",
    "last updated on",
    "found a bug",
    "created using sphinx",
    "dec jan feb mar apr may jun jul aug sep oct nov utc",
)
_SIDEBAR_MARKERS = ("Previous topic", "Next topic", "Show Source", "Quick search", "Report a Bug")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_CHROME_WORDS = frozenset(w for p in _CHROME_PHRASES for w in p.split())


def _only_chrome(text: str) -> bool:
    """Punctuation alone, or nothing but words of the page chrome ("previous | next | index")."""
    words = [w.lower() for w in _WORD.findall(text) if not w.isdigit()]  # versions, dates
    return not words or all(w in _CHROME_WORDS for w in words)


def test_no_chunk_in_the_index_is_navigation_chrome(live_stack: LiveStack, tmp_path: Path) -> None:
    """Scans every chunk of the index after the Python docs went in (this module's upload, or
    an upload of its own when run alone): none is only chrome or punctuation, and no chunk
    carries the sidebar of a Sphinx page."""
    group = fast_arm(PRODUCT_ARMS["product"], fast=True).group
    key = create_query_key(live_stack.settings.home, "python-docs-chrome", group)
    access = ProductAccess(
        url=live_stack.url, ingest_key=live_stack.admin_key, query_keys={"product": key}
    )
    run(arms=["product"], fast=True, access=access, progress=lambda *_: None)  # unchanged: fast

    chunks = live_stack.components.store.chunk_texts()
    titles = {title.split(" — ")[0] for _, title, _ in chunks}
    assert {"functools", "itertools", "collections"} <= titles  # the docs are in the index
    assert len(chunks) > 10 * len(load_fast_pages())
    chrome = [(cid, text[:80]) for cid, _, text in chunks if _only_chrome(text)]
    assert chrome == []
    sidebars = [
        (cid, text[:80])
        for cid, _, text in chunks
        if sum(marker in text for marker in _SIDEBAR_MARKERS) >= 2
    ]
    assert sidebars == []
