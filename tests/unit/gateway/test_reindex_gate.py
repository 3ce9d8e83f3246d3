"""The reindex gate's verdict, the change fingerprint and finding the live model's alias."""

from __future__ import annotations

import pytest

from gateway.cli.reindex import live_entry, model_id
from gateway.models.config import PACKAGED_EMBEDDER, ModelEntry, ModelInfo, ModelsConfig
from gateway.models.reindex import fingerprint
from gateway.models.reindex_gate import Margins, judge

pytestmark = pytest.mark.unit

LIVE = {"ndcg@10": 0.98, "recall@10": 1.0, "mrr@10": 0.97}
MARGINS = Margins(max_drop_ndcg=0.02, max_drop_recall=0.02)


def test_a_drop_within_the_margins_passes() -> None:
    verdict = judge(LIVE, {"ndcg@10": 0.96, "recall@10": 0.98, "mrr@10": 0.5}, MARGINS)
    assert verdict.passed and verdict.failures == []


def test_a_drop_beyond_a_margin_fails_naming_metric_and_both_scores() -> None:
    verdict = judge(LIVE, {"ndcg@10": 0.90, "recall@10": 1.0}, MARGINS)
    assert not verdict.passed
    assert len(verdict.failures) == 1
    assert "ndcg@10 drops by 0.0800 (0.9800 -> 0.9000)" in verdict.failures[0]


def test_an_improvement_passes_and_a_missing_score_counts_as_zero() -> None:
    assert judge(LIVE, {"ndcg@10": 1.0, "recall@10": 1.0}, MARGINS).passed
    assert len(judge(LIVE, {}, MARGINS).failures) == 2


def test_fingerprint_changes_with_any_property_and_ignores_key_order() -> None:
    a = {"chunk_id": "c1", "text": "hello", "access_groups": ["x"]}
    assert fingerprint(a) == fingerprint(dict(reversed(list(a.items()))))
    assert fingerprint(a) != fingerprint({**a, "access_groups": ["x", "y"]})


def _entry(alias: str, model: str, mode: str = "embedding") -> ModelEntry:
    return ModelEntry(
        model_name=alias,
        litellm_params={"model": model, "timeout": 5, "max_retries": 0, "model_path": "/m"},
        model_info=ModelInfo(mode=mode),  # type: ignore[arg-type]
    )


def test_the_live_side_of_the_gate_uses_an_alias_serving_the_recorded_model() -> None:
    config = ModelsConfig.model_construct(
        model_list=[_entry("embed-default", "local/new"), _entry("embed-old", "local/old")]
    )
    found = live_entry(config, "local/old")
    assert found is not None and found.model_name == "embed-old"
    assert model_id(found) == "local/old"
    assert live_entry(config, "ollama/unknown") is None
    packaged = live_entry(config, PACKAGED_EMBEDDER)
    assert packaged is not None and model_id(packaged) == PACKAGED_EMBEDDER
