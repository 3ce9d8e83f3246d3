"""Retrieval metrics over a ranked list of documents, with binary relevance. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence


def dedup_ranking(doc_keys: Sequence[str]) -> list[str]:
    """Chunks to documents: a document counts once, at the rank of its best chunk."""
    return list(dict.fromkeys(doc_keys))


def hit_at(ranking: Sequence[str], gold: set[str], k: int) -> float:
    return 1.0 if any(doc in gold for doc in ranking[:k]) else 0.0


def recall_at(ranking: Sequence[str], gold: set[str], k: int) -> float:
    return len(gold & set(ranking[:k])) / len(gold) if gold else 0.0


def mrr_at(ranking: Sequence[str], gold: set[str], k: int) -> float:
    for rank, doc in enumerate(ranking[:k], start=1):
        if doc in gold:
            return 1.0 / rank
    return 0.0


def ndcg_at(ranking: Sequence[str], gold: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], 1) if doc in gold)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_metrics(ranking: Sequence[str], gold: set[str]) -> dict[str, float]:
    return {
        "hit@1": hit_at(ranking, gold, 1),
        "hit@5": hit_at(ranking, gold, 5),
        "recall@10": recall_at(ranking, gold, 10),
        "mrr@10": mrr_at(ranking, gold, 10),
        "ndcg@10": ndcg_at(ranking, gold, 10),
    }


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def contains_keys(answer: str, keys: Sequence[str]) -> bool:
    text = answer.lower()
    return all(key.lower() in text for key in keys)
