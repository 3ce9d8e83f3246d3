"""Evaluation metrics, golden-file validation and the gate: pure logic."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from gateway.evaluation.gate import GateThresholds, check_gate
from gateway.evaluation.golden import load_golden
from gateway.evaluation.metrics import (
    contains_keys,
    dedup_ranking,
    hit_at,
    mrr_at,
    ndcg_at,
    recall_at,
)
from gateway.evaluation.runner import AnswerResult, EvalRun
from services.errors import InvalidRequestError

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def test_metrics_on_a_known_ranking() -> None:
    ranking = ["a", "x", "b", "y"]
    gold = {"b", "a", "z"}
    assert hit_at(ranking, gold, 1) == 1.0 and hit_at(["x"], gold, 1) == 0.0
    assert recall_at(ranking, gold, 10) == pytest.approx(2 / 3)
    assert mrr_at(["x", "y", "b"], gold, 10) == pytest.approx(1 / 3)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(ranking, gold, 10) == pytest.approx((1 + 1 / math.log2(4)) / ideal)
    assert ndcg_at(["a", "b", "z"], gold, 10) == pytest.approx(1.0)


def test_chunks_collapse_to_documents_at_their_best_rank() -> None:
    assert dedup_ranking(["a", "a", "b", "a", "c"]) == ["a", "b", "c"]


def test_answer_keys_match_case_insensitively_and_all_must_be_present() -> None:
    assert contains_keys("Recovery takes Four Hours; RPO 15 minutes", ["four hours", "15 minutes"])
    assert not contains_keys("four hours", ["four hours", "15 minutes"])


def test_the_shipped_golden_set_is_valid_and_large_enough() -> None:
    questions = load_golden(GOLDEN / "golden.jsonl")
    assert len(questions) >= 40
    types = {q.type for q in questions}
    assert {"exact_id", "paraphrase", "vague", "misspelled", "multi_part", "unanswerable"} <= types
    corpus = {p.name for p in (GOLDEN / "corpus").glob("*.md")}
    for q in questions:
        assert set(q.gold_sources) <= corpus, q.id


@pytest.mark.parametrize(
    "line",
    [
        '{"id": "a", "question": "q?", "type": "paraphrase"}',  # answerable without gold
        '{"id": "a", "question": "q?", "gold_sources": ["x.md"], "type": "unanswerable"}',
        '{"id": "a", "question": ""}',
        "not json",
    ],
)
def test_bad_golden_lines_are_rejected_with_their_line_number(tmp_path: Path, line: str) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "ok", "question": "q?", "gold_sources": ["x.md"]}\n' + line + "\n")
    with pytest.raises(InvalidRequestError, match=":2:"):
        load_golden(path)


def summary(hybrid: float, bm25: float, vector: float, refusal: float = 1.0) -> dict[str, object]:
    def mode(ndcg: float) -> dict[str, float]:
        return {"ndcg@10": ndcg, "recall@10": 1.0, "hit@5": 1.0, "hit@1": 1.0, "mrr@10": 1.0}

    return {
        "retrieval": {"hybrid": mode(hybrid), "bm25": mode(bm25), "vector": mode(vector)},
        "answers": {"refusal_accuracy": refusal, "answer_key_match": None},
    }


def test_gate_passes_when_hybrid_leads_and_thresholds_hold() -> None:
    gate = GateThresholds(min_hybrid_ndcg_at_10=0.5, min_refusal_accuracy=0.8)
    assert check_gate(summary(0.8, 0.7, 0.75), gate) == []


def test_gate_fails_when_hybrid_falls_behind_a_pure_mode_or_a_threshold() -> None:
    gate = GateThresholds(min_hybrid_ndcg_at_10=0.5, min_refusal_accuracy=0.8)
    failures = check_gate(summary(0.6, 0.7, 0.4, refusal=0.5), gate)
    assert any("bm25" in f for f in failures)
    assert any("refusal_accuracy" in f for f in failures)
    assert check_gate(summary(0.4, 0.3, 0.3), gate) == ["hybrid ndcg@10 0.400 < 0.500"]


def test_shipped_gate_file_is_valid() -> None:
    gate = GateThresholds.from_file(GOLDEN / "gate.json")
    assert gate.hybrid_at_least_pure_modes
    assert json.loads((GOLDEN / "gate.json").read_text())["min_hybrid_ndcg_at_10"] > 0


def test_answer_summary_has_citing_share_and_unsupported_sentence_share() -> None:
    def answer(refused: bool, cited: int, sentences: int, unsupported: int) -> AnswerResult:
        return AnswerResult(
            id="q",
            type="fact",
            answer="a",
            refused=refused,
            retrieval_status="ok",
            correct_refusal=None,
            keys_matched=True,
            cited=cited,
            sentences=sentences,
            unsupported=unsupported,
        )

    run = EvalRun(answers=[answer(False, 2, 3, 1), answer(False, 0, 1, 1), answer(True, 0, 0, 0)])
    a = run.summary()["answers"]
    assert (a["answers_given"], a["citing_share"]) == (2, 0.5)
    assert a["unsupported_sentence_share"] == 0.5
