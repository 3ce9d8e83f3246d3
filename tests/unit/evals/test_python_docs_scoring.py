"""Page-level metrics, the baselines' page ranking and fusion, and the product's hit-to-page
mapping for both result shapes (a chunk list today, documents with passages next)."""

from __future__ import annotations

import math

import pytest

from benchmarks.python_docs.baselines import pages_from_windows, rrf
from benchmarks.python_docs.metrics import auroc, graded_ndcg_at, page_metrics
from benchmarks.python_docs.product import page_ranking

pytestmark = pytest.mark.unit


def test_graded_ndcg_rewards_the_answering_page_above_a_helping_one() -> None:
    grades = {"a.html": 2, "b.html": 1}
    assert graded_ndcg_at(["a.html", "b.html"], grades) == pytest.approx(1.0)
    swapped = graded_ndcg_at(["b.html", "a.html"], grades)
    ideal = 3 + 1 / math.log2(3)
    assert swapped == pytest.approx((1 + 3 / math.log2(3)) / ideal)
    assert graded_ndcg_at(["x.html"] * 3, grades) == 0.0
    assert graded_ndcg_at([f"x{i}" for i in range(10)] + ["a.html"], grades) == 0.0  # past 10


def test_page_metrics_count_a_page_once_at_its_best_rank() -> None:
    m = page_metrics(["x", "a", "a", "b", "y"], {"a": 2, "b": 1})
    assert m["hit@1"] == 0.0 and m["hit@5"] == 1.0
    assert m["mrr@10"] == 0.5
    assert m["recall@10"] == 1.0
    assert 0.0 < m["ndcg@10"] < 1.0


def test_auroc_is_half_when_scores_do_not_separate() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([], [0.1]) is None


def test_a_page_takes_the_score_of_its_best_window() -> None:
    owners = ["p1", "p1", "p2", "p3"]
    ranked = pages_from_windows([1, 0, 3, 2], [9.0, 8.0, 7.0, 1.0], owners)
    assert ranked.pages == ["p1", "p3", "p2"]
    assert ranked.top_score == 9.0


def test_rrf_favours_a_page_both_rankings_like() -> None:
    fused = rrf([["a", "b", "c"], ["c", "b", "d"]])
    assert fused.pages[0] == "b" or fused.pages[0] == "c"
    assert set(fused.pages) == {"a", "b", "c", "d"}
    assert fused.pages.index("b") < fused.pages.index("a")


CHUNKS = [
    {"doc_id": "d1", "chunk_id": "c1", "source": "pydocs-redact/library/os.html"},
    {"doc_id": "d2", "chunk_id": "c2", "source": "pydocs-redact/library/os.path.html"},
    {"doc_id": "d1", "chunk_id": "c3", "source": "pydocs-redact/library/os.html"},
    {"doc_id": "zz", "chunk_id": "c4", "source": "handbook/leave.md"},
    {"doc_id": "d3", "chunk_id": "c5", "source": ""},
]


def test_chunk_hits_map_to_a_deduplicated_page_ranking() -> None:
    ranking = page_ranking(CHUNKS, "pydocs-redact", {"d3": "library/shutil.html"})
    assert ranking == ["library/os.html", "library/os.path.html", "library/shutil.html"]


def test_document_grouped_hits_map_the_same_way() -> None:
    grouped = [
        {"doc_id": "d2", "source": "pydocs-redact/library/os.path.html", "passages": [{}]},
        {"doc_id": "d1", "source": "pydocs-redact/library/os.html", "passages": []},
        {"doc_id": "d9", "passages": [{"source": "pydocs-redact/library/glob.html"}]},
    ]
    assert page_ranking(grouped, "pydocs-redact", {}) == [
        "library/os.path.html",
        "library/os.html",
        "library/glob.html",
    ]


def test_another_arms_documents_never_count() -> None:
    assert page_ranking(CHUNKS, "pydocs-noredact", {}) == []
