"""Page-level metrics: graded nDCG@10 and the binary ones from ``gateway.evaluation.metrics``.

nDCG uses the graded relevance of the gold pages (gain 2^rel - 1: 3 for a page that answers, 1 for
a page that helps). hit@k, MRR@10 and recall@10 count every gold page as relevant. Retrieval
metrics are averaged over answerable questions only; for unanswerable ones each arm reports how
well its top score separates them from answerable ones (AUROC), and the product arms also report
how often their own ``retrieval_status`` refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from gateway.evaluation.metrics import hit_at, mean, mrr_at, recall_at

METRICS = ("ndcg@10", "mrr@10", "hit@1", "hit@5", "recall@10")


def graded_ndcg_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    def gain(rel: int) -> float:
        return float(2**rel - 1)

    dcg = sum(
        gain(grades.get(page, 0)) / math.log2(rank + 1)
        for rank, page in enumerate(ranking[:k], start=1)
    )
    ideal_grades = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(gain(rel) / math.log2(rank + 1) for rank, rel in enumerate(ideal_grades, start=1))
    return dcg / idcg if idcg else 0.0


def page_metrics(ranking: Sequence[str], grades: Mapping[str, int]) -> dict[str, float]:
    ranking = list(dict.fromkeys(ranking))  # a page counts once, at its best rank
    gold = set(grades)
    return {
        "ndcg@10": graded_ndcg_at(ranking, grades, 10),
        "mrr@10": mrr_at(ranking, gold, 10),
        "hit@1": hit_at(ranking, gold, 1),
        "hit@5": hit_at(ranking, gold, 5),
        "recall@10": recall_at(ranking, gold, 10),
    }


def average(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {m: mean([r[m] for r in rows]) for m in METRICS}


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return None
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))
