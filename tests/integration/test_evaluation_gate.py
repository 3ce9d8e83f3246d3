"""`holdfast eval` on the shipped golden set is a CI gate; sabotaged retrieval fails it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli.eval import run_eval
from gateway.evaluation.gate import GateThresholds, check_gate
from gateway.evaluation.report import write_reports
from gateway.evaluation.runner import ALL_MODES, RERANK_MODE
from gateway.security.keys import KeyStore
from gateway.security.secrets import id_key
from ingestion.identity import Identity
from ingestion.pipeline import ChunkingPolicy, ingest_files
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


@pytest.fixture(scope="module")
def golden_key(live_stack: LiveStack) -> Iterator[str]:
    c = live_stack.components
    report = ingest_files(
        sorted((GOLDEN / "corpus").glob("*.md")),
        groups=["golden"],
        store=c.store,
        embedder=c.embedder,
        redactor=c.redactor,
        policy=ChunkingPolicy(
            live_stack.settings.chunking.max_tokens, live_stack.settings.chunking.overlap_tokens
        ),
        identity=Identity(id_key(live_stack.settings)),
    )
    assert report.rejected == 0
    _, key = KeyStore(live_stack.settings.keys_db).create(
        "eval", groups=["golden"], roles=["query"]
    )
    yield key


def test_golden_set_passes_the_gate_and_writes_reports(
    live_stack: LiveStack, golden_key: str, tmp_path: Path
) -> None:
    run = run_eval(
        GOLDEN / "golden.jsonl",
        url=live_stack.url,
        key=golden_key,
        modes=list(ALL_MODES),  # the test stack has no reranker: hybrid+rerank says so
        answers=8,  # every unanswerable plus a few answerables: bounded LLM time in CI
        show_progress=False,
    )
    summary = run.summary()
    failures = check_gate(summary, GateThresholds.from_file(GOLDEN / "gate.json"))
    paths = write_reports(run, tmp_path, failures)
    print(json.dumps(summary, indent=2))  # the figures, in the CI log
    assert failures == [], failures
    assert {p.name for p in paths} == {
        "eval.json",
        "eval.md",
        "ndcg_distribution.png",
        "ndcg_by_type.png",
    }
    report = (tmp_path / "eval.md").read_text()
    assert "Gate: PASSED" in report
    assert set(summary["retrieval"]) == {"bm25", "vector", "hybrid"}
    assert "rerank-default" in summary["skipped_modes"][RERANK_MODE]
    assert f"{RERANK_MODE} not measured" in report


def test_forcing_a_bad_hybrid_alpha_fails_the_gate(live_stack: LiveStack, golden_key: str) -> None:
    run = run_eval(
        GOLDEN / "golden.jsonl",
        url=live_stack.url,
        key=golden_key,
        modes=["bm25", "vector", "hybrid"],
        answers=0,
        hybrid_alpha=0.0,  # "hybrid" degraded to keyword-only
        show_progress=False,
    )
    gate = GateThresholds.from_file(GOLDEN / "gate.json").model_copy(
        update={"min_refusal_accuracy": None}
    )
    failures = check_gate(run.summary(), gate)
    assert failures, "a sabotaged retrieval must not pass the gate"
