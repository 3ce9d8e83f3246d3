"""The quality gate of a reindex: the golden set against the live and the shadow collection.

Retrieval only, hybrid with the configured alpha, the same depth as ``holdfast eval`` (10), run
in-process against each physical collection directly: the live one with queries embedded by the
live model, the shadow with the new model. The cutover is refused when nDCG@10 or recall@10 drops
by more than its margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from gateway.evaluation.golden import GoldenQuestion
from gateway.evaluation.metrics import dedup_ranking, mean, retrieval_metrics
from gateway.evaluation.runner import RETRIEVAL_DEPTH
from gateway.models.reindex import GateVerdict
from services.ports import Embedder, VersionedIndex
from services.records import SearchHit

GATED = ("ndcg@10", "recall@10")


@dataclass(frozen=True, slots=True)
class Margins:
    max_drop_ndcg: float
    max_drop_recall: float


def _doc_key(question: GoldenQuestion, hit: SearchHit) -> str:
    """Match on doc ids when the golden set names them, else on file names (as ``eval`` does)."""
    if question.gold_doc_ids:
        return hit.chunk.doc_id
    return PurePath(hit.chunk.source).name


def score_collection(
    store: VersionedIndex,
    collection: str,
    embedder: Embedder,
    questions: Sequence[GoldenQuestion],
    *,
    groups: Sequence[str],
    alpha: float,
) -> dict[str, float]:
    """Mean retrieval metrics of ``collection`` over the answerable golden questions."""
    rows: list[dict[str, float]] = []
    for question in questions:
        if not question.answerable:
            continue
        hits = store.search(
            groups=groups,
            query=question.question,
            vector=embedder.embed_query(question.question),
            limit=RETRIEVAL_DEPTH,
            alpha=alpha,
            collection=collection,
        )
        ranking = dedup_ranking([_doc_key(question, h) for h in hits])
        gold = set(question.gold_doc_ids or question.gold_sources)
        rows.append(retrieval_metrics(ranking, gold))
    if not rows:
        return {}
    return {name: round(mean([r[name] for r in rows]), 4) for name in rows[0]}


def judge(live: dict[str, float], shadow: dict[str, float], margins: Margins) -> GateVerdict:
    """Refuse when a gated metric of the shadow falls more than its margin below the live one."""
    failures = []
    for name, margin in zip(GATED, (margins.max_drop_ndcg, margins.max_drop_recall), strict=True):
        drop = live.get(name, 0.0) - shadow.get(name, 0.0)
        if drop > margin + 1e-9:
            failures.append(
                f"{name} drops by {drop:.4f} ({live.get(name, 0.0):.4f} -> "
                f"{shadow.get(name, 0.0):.4f}), more than the allowed {margin:.4f}"
            )
    return GateVerdict(live=live, shadow=shadow, failures=failures)
