"""The quality gate: thresholds a run must meet, and hybrid no worse than either pure mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GateThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_hybrid_ndcg_at_10: float = Field(0.0, ge=0, le=1)
    min_hybrid_recall_at_10: float = Field(0.0, ge=0, le=1)
    min_hybrid_hit_at_5: float = Field(0.0, ge=0, le=1)
    min_refusal_accuracy: float | None = Field(None, ge=0, le=1)
    min_answer_key_match: float | None = Field(None, ge=0, le=1)
    hybrid_at_least_pure_modes: bool = True

    @classmethod
    def from_file(cls, path: Path) -> GateThresholds:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


def check_gate(summary: dict[str, Any], gate: GateThresholds) -> list[str]:
    """Every failed check as a readable line; empty means the gate passes."""
    failures: list[str] = []
    retrieval = summary["retrieval"]
    hybrid = retrieval.get("hybrid")
    if hybrid is None:
        return ["the run has no hybrid mode to gate on"]
    for metric, floor in (
        ("ndcg@10", gate.min_hybrid_ndcg_at_10),
        ("recall@10", gate.min_hybrid_recall_at_10),
        ("hit@5", gate.min_hybrid_hit_at_5),
    ):
        if hybrid[metric] < floor:
            failures.append(f"hybrid {metric} {hybrid[metric]:.3f} < {floor:.3f}")
    if gate.hybrid_at_least_pure_modes:
        for mode in ("bm25", "vector"):
            if mode in retrieval and hybrid["ndcg@10"] < retrieval[mode]["ndcg@10"]:
                failures.append(
                    f"hybrid ndcg@10 {hybrid['ndcg@10']:.3f} < {mode} "
                    f"{retrieval[mode]['ndcg@10']:.3f}"
                )
    answers = summary["answers"]
    optional_floors: tuple[tuple[str, float | None], ...] = (
        ("refusal_accuracy", gate.min_refusal_accuracy),
        ("answer_key_match", gate.min_answer_key_match),
    )
    for key, wanted in optional_floors:
        if wanted is not None and (answers.get(key) is None or answers[key] < wanted):
            failures.append(f"{key} {answers.get(key)} < {wanted:.3f}")
    return failures
