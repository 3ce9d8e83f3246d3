"""The retrieval ladder of the Python-docs eval: the product-* arms search the product arm's
documents with their own alpha or rerank flag, and the reranker's cost is reported per question
as the latency it adds over the hybrid product arm."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from benchmarks.python_docs.product import PRODUCT_ARMS, ProductClient
from benchmarks.python_docs.runner import (
    ALL_ARMS,
    ArmResult,
    added_latency_ms,
    fast_arm,
    percentile,
)

pytestmark = pytest.mark.unit


def test_the_ladder_arms_share_the_product_arms_documents_and_upload_nothing() -> None:
    product = PRODUCT_ARMS["product"]
    ladder = {
        name: PRODUCT_ARMS[name] for name in ("product-bm25", "product-vector", "product-rerank")
    }
    assert {a.group for a in ladder.values()} == {product.group}
    assert not any(a.uploads for a in ladder.values()) and product.uploads
    assert (ladder["product-bm25"].alpha, ladder["product-vector"].alpha) == (0.0, 1.0)
    assert ladder["product-rerank"].rerank and ladder["product-rerank"].alpha is None
    assert set(ladder) <= set(ALL_ARMS)
    fast = fast_arm(ladder["product-rerank"], fast=True)
    assert fast.group == "pydocs-fast-redact" and fast.rerank and not fast.uploads


def test_the_search_body_carries_alpha_and_rerank_only_when_an_arm_sets_them() -> None:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"results": []})

    client = ProductClient("http://gateway.test")
    client.http = httpx.Client(transport=httpx.MockTransport(answer))
    client.search("k", "q", 20)
    client.search("k", "q", 20, alpha=0.0)
    client.search("k", "q", 20, rerank=True)
    assert bodies == [
        {"query": "q", "top_k": 20},
        {"query": "q", "top_k": 20, "alpha": 0.0},
        {"query": "q", "top_k": 20, "rerank": True},
    ]


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)


def test_added_latency_is_taken_question_by_question() -> None:
    hybrid = ArmResult("product", latencies_ms=[100.0, 200.0, 150.0])
    reranked = ArmResult("product-rerank", latencies_ms=[1100.0, 1400.0, 1450.0])
    added = added_latency_ms(hybrid, reranked)  # differences 1000, 1200, 1300
    assert added == {"p50": 1200.0, "p95": pytest.approx(1290.0), "n": 3.0}
    assert added_latency_ms(ArmResult("product"), reranked) is None
