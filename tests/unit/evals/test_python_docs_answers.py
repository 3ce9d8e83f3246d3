"""Answer-level metrics of the Python-docs eval: key accuracy, refusals, citations, latency, the
seeded sample, and the table in the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.python_docs import report
from benchmarks.python_docs.answers import (
    AnswerArm,
    AnswerRecord,
    ChatSwitch,
    packaged_model,
    sample_questions,
)
from benchmarks.python_docs.questions import Question
from benchmarks.python_docs.runner import RunResult
from gateway.models.config import RERANK_ALIAS, parse_models

pytestmark = pytest.mark.unit


def _q(n: int, answerable: bool = True, fast: bool = True) -> Question:
    if answerable:
        return Question(
            id=f"api-{n:03d}",
            question=f"question {n}",
            style="api",
            gold_pages={"a.html": 2},
            answer_key=["128"],
            fast=fast,
        )
    return Question(
        id=f"una-{n:03d}",
        question=f"unanswerable {n}",
        style="unanswerable",
        answerable=False,
        absent=["x.y"],
        fast=fast,
    )


def _rec(
    qid: str, answerable: bool, *, refused: bool, held: list[bool], cited: int, ms: float
) -> AnswerRecord:
    return AnswerRecord(qid, answerable, "a", refused, None, cited, held, ms, "m")


def test_summary_counts_keys_refusals_citations_and_latency() -> None:
    arm = AnswerArm(
        "qwen",
        [
            _rec("api-001", True, refused=False, held=[True], cited=1, ms=1000),
            _rec("api-002", True, refused=False, held=[False], cited=0, ms=2000),
            _rec("api-003", True, refused=True, held=[], cited=0, ms=3000),
            _rec("una-001", False, refused=True, held=[], cited=0, ms=4000),
            _rec("una-002", False, refused=False, held=[], cited=1, ms=5000),
        ],
    )
    s = arm.summary()
    assert (s["keys_correct"], s["answerable"], s["key_accuracy"]) == (1, 3, 1 / 3)
    assert (s["refused_unanswerable"], s["unanswerable"]) == (1, 2)
    assert s["refused_answerable"] == 1
    assert (s["answers_citing"], s["answers_given"]) == (1, 2)
    assert s["latency_p50_ms"] == 3000
    assert s["latency_p95_ms"] == 5000


def test_an_answer_holding_a_key_but_refused_is_not_correct() -> None:
    record = _rec("api-001", True, refused=True, held=[True], cited=0, ms=1)
    assert not record.correct


def test_sample_is_seeded_and_keeps_every_unanswerable_of_the_run() -> None:
    run = [_q(n) for n in range(1, 41)] + [_q(1, False), _q(2, False)]
    whole = [*run, *(_q(n, False, fast=False) for n in range(3, 13))]
    first = sample_questions(run, whole, answerable=30, extra_unanswerable=4, seed=7)
    again = sample_questions(run, whole, answerable=30, extra_unanswerable=4, seed=7)
    assert [q.id for q in first] == [q.id for q in again]
    assert sum(q.answerable for q in first) == 30
    unanswerable = {q.id for q in first if not q.answerable}
    assert {"una-001", "una-002"} <= unanswerable and len(unanswerable) == 6


def test_report_has_one_row_per_chat_model() -> None:
    run = RunResult(
        fast=True,
        pages=[],
        questions=[],
        arms={},
        docs_version="3.x",
        timings_s={},
        environment={},
    )
    run.answers = {
        "gemma3-270m": AnswerArm("gemma3-270m", error="reload failed"),
        "qwen2.5-coder-0.5b": AnswerArm(
            "qwen2.5-coder-0.5b",
            [_rec("api-001", True, refused=False, held=[True], cited=1, ms=9000)],
        ),
    }
    run.answers_sample = {"question_ids": ["api-001"], "seed": 15, "answerable": 30}
    text = "\n".join(report.answer_lines(run))
    assert "| gemma3-270m | not run: reload failed |" in text
    assert (
        "| qwen2.5-coder-0.5b | 1/1 (1.00) | — | 0/1 (0.00) | 1/1 (1.00) | — | 0/1 (0.00) "
        "| 9.0 s | 9.0 s | 0 |" in text
    )


def test_unsupported_sentences_are_counted_over_the_answers_given() -> None:
    def rec(qid: str, refused: bool, sentences: int, unsupported: int) -> AnswerRecord:
        r = _rec(qid, True, refused=refused, held=[True], cited=1, ms=1)
        r.sentences, r.unsupported = sentences, unsupported
        return r

    arm = AnswerArm(
        "qwen",
        [rec("api-001", False, 3, 1), rec("api-002", False, 2, 0), rec("api-003", True, 4, 4)],
    )
    s = arm.summary()
    assert (s["unsupported_sentences"], s["answer_sentences"]) == (1, 5)
    assert s["unsupported_share"] == 0.2 and s["answers_with_unsupported"] == 1
    # records written before the attribution existed still load
    old = {
        k: v
        for k, v in arm.as_json()["records"][0].items()
        if k not in {"sentences", "unsupported"}
    }
    assert AnswerArm.from_json({"model": "qwen", "records": [old]}).records[0].sentences == 0


MODELS_YAML = """\
model_list:
- model_name: chat-default
  litellm_params:
    model: ollama_chat/holdfast-qwen2.5-coder-0.5b
    api_base: http://127.0.0.1:11434
    timeout: 180
    max_retries: 0
- model_name: chat-gemma3-270m
  litellm_params:
    model: ollama_chat/holdfast-gemma3-270m
    api_base: http://127.0.0.1:11434
    timeout: 180
    max_retries: 0
- model_name: embed-default
  litellm_params: {model: local/all-MiniLM-L6-v2, timeout: 30, max_retries: 0}
  model_info: {mode: embedding}
"""


class _OfflineSwitch(ChatSwitch):
    """The switch without the stack: reloads are counted, not sent."""

    reloads = 0

    def _reload(self) -> None:
        self.reloads += 1


def test_a_rerank_arm_adds_the_shipped_reranker_entry_and_the_next_arm_drops_it(
    tmp_path: Path,
) -> None:
    models_file = tmp_path / "models.yaml"
    models_file.write_text(MODELS_YAML, encoding="utf-8")
    switch = _OfflineSwitch("http://gateway", "key", models_file)

    switch.use("gemma3-270m+rerank")
    config = parse_models(models_file.read_text(encoding="utf-8"))
    entries = {e.model_name: e for e in config.model_list}
    assert entries["chat-default"].litellm_params["model"] == "ollama_chat/holdfast-gemma3-270m"
    assert entries[RERANK_ALIAS].model_info.mode == "rerank"
    assert entries[RERANK_ALIAS].litellm_params["model"] == "onnx/bge-small-en-v1.5-q"

    switch.use("qwen2.5-coder-0.5b")
    config = parse_models(models_file.read_text(encoding="utf-8"))
    names = [e.model_name for e in config.model_list]
    assert RERANK_ALIAS not in names
    assert config.model_list[0].litellm_params["model"].endswith("qwen2.5-coder-0.5b")

    switch.restore()
    assert models_file.read_text(encoding="utf-8") == MODELS_YAML
    assert switch.reloads == 3
    assert packaged_model("qwen2.5-coder-0.5b+rerank") == "qwen2.5-coder-0.5b"
