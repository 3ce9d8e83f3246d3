"""The in-process embedding reranker: fusion with the retrieval order, the candidate cap, the time
budget, and how the query path applies a partial set of scores. A deterministic fake encoder
stands in for the ONNX model (vectors chosen per text)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.container import reranker_for
from gateway.models.config import DEFAULT_RERANK_CANDIDATES, ModelEntry, ModelInfo, parse_models
from gateway.query.retrieval import rerank
from services.embedding_reranker import EmbeddingReranker, fused_scores
from services.errors import EmbedderUnavailableError, RerankerUnavailableError
from services.records import Chunk, RerankScore, SearchHit
from services.tei_reranker import TEIReranker

pytestmark = pytest.mark.unit


class FakeEncoder:
    """Query vector [1, 0]; a text's vector is [cos, sin] of the angle it names."""

    def __init__(self, similarity: dict[str, float]) -> None:
        self.similarity = similarity
        self.embedded: list[str] = []

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return [[self.similarity[t], 0.0] for t in texts]


def test_fusion_is_weighted_reciprocal_rank_of_retrieval_and_similarity_order() -> None:
    # retrieval ranks 1, 2, 3; similarity ranks 3, 1, 2
    scores = fused_scores([0.1, 0.9, 0.5], rank_constant=10, weight=2)
    assert scores == pytest.approx([1 / 11 + 2 / 13, 1 / 12 + 2 / 11, 1 / 13 + 2 / 12])


def test_similarity_ties_keep_the_retrieval_order() -> None:
    scores = fused_scores([0.5, 0.5, 0.5], rank_constant=10, weight=2)
    assert scores == sorted(scores, reverse=True)


def test_a_candidate_both_signals_like_comes_first_and_retrieval_order_counts_too() -> None:
    encoder = FakeEncoder({"a": 0.30, "b": 0.80, "c": 0.79, "d": 0.10})
    reranker = EmbeddingReranker(encoder, "fake", max_candidates=10, timeout_s=5)
    order = [s.index for s in reranker.rerank("q", ["a", "b", "c", "d"])]
    # b: retrieval 2nd, similarity 1st; a (1st, 3rd) stays just ahead of c (3rd, 2nd)
    assert order == [1, 0, 2, 3]


def test_only_the_leading_candidates_are_embedded_and_scored() -> None:
    texts = [f"t{i}" for i in range(20)]
    encoder = FakeEncoder({t: 1.0 - i / 100 for i, t in enumerate(texts)})
    reranker = EmbeddingReranker(encoder, "fake", max_candidates=6, timeout_s=5)
    scores = reranker.rerank("q", texts)
    assert sorted(s.index for s in scores) == list(range(6))
    assert encoder.embedded == texts[:6]


def test_embedding_stops_at_the_first_batch_boundary_past_the_time_budget() -> None:
    texts = [f"t{i}" for i in range(8)]
    encoder = FakeEncoder({t: 0.5 for t in texts})
    ticks: Iterator[float] = iter([0.0, 0.5, 2.0, 9.0, 9.0])  # start, after batch 1, after 2...

    reranker = EmbeddingReranker(
        encoder, "fake", max_candidates=8, timeout_s=1.0, batch_size=2, clock=lambda: next(ticks)
    )
    scores = reranker.rerank("q", texts)
    assert encoder.embedded == texts[:4]  # batch 1 in time, batch 2 begun in time, then over
    assert sorted(s.index for s in scores) == [0, 1, 2, 3]


def test_fewer_than_two_candidates_cost_nothing() -> None:
    encoder = FakeEncoder({})
    reranker = EmbeddingReranker(encoder, "fake", max_candidates=8, timeout_s=1)
    assert reranker.rerank("q", []) == []
    assert reranker.rerank("q", ["only"]) == [RerankScore(0, 0.0)]
    assert encoder.embedded == []


def test_an_encoder_failure_is_the_reranker_ports_error() -> None:
    class Broken(FakeEncoder):
        def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
            raise EmbedderUnavailableError("model file missing")

    reranker = EmbeddingReranker(Broken({}), "fake", max_candidates=8, timeout_s=1)
    with pytest.raises(RerankerUnavailableError, match="model file missing"):
        reranker.rerank("q", ["a", "b"])


def _hit(n: int, title: str = "os", section: str = "Files") -> SearchHit:
    chunk = Chunk(
        chunk_id=f"c{n}",
        doc_id=f"d{n}",
        text=f"text {n}",
        source=f"s{n}",
        title=title,
        section=section,
        position=n,
        content_hash=f"h{n}",
        access_groups=("g",),
        parent_id=f"p{n}",
    )
    return SearchHit(chunk=chunk, score=1.0 - n / 10, similarity=0.5)


class ScriptedReranker:
    def __init__(self, scores: list[RerankScore]) -> None:
        self.scores = scores
        self.texts: list[str] = []

    def rerank(self, query: str, texts: Sequence[str]) -> list[RerankScore]:
        self.texts = list(texts)
        return self.scores

    def health(self) -> Any:
        return None


def test_the_query_path_puts_unscored_hits_last_in_retrieval_order() -> None:
    hits = [_hit(i) for i in range(5)]
    scripted = ScriptedReranker([RerankScore(0, 0.1), RerankScore(1, 0.9)])
    out = rerank("q", hits, scripted)
    assert [h.chunk.chunk_id for h in out] == ["c1", "c0", "c2", "c3", "c4"]


def test_the_reranker_reads_each_chunk_under_its_title_and_section() -> None:
    scripted = ScriptedReranker([])
    rerank("q", [_hit(0), _hit(1, section="os"), _hit(2, title="", section="")], scripted)
    assert scripted.texts == ["os — Files\ntext 0", "os\ntext 1", "text 2"]


def _rerank_entry(model: str, **params: Any) -> ModelEntry:
    return ModelEntry(
        model_name="rerank-default",
        litellm_params={"model": model, "timeout": 3, "max_retries": 0, **params},
        model_info=ModelInfo(mode="rerank"),
    )


def test_an_onnx_rerank_entry_is_served_in_process_with_its_cap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOLDFAST_MODELS_DIR", str(tmp_path))
    reranker = reranker_for(_rerank_entry("onnx/bge-small-en-v1.5-q"))
    assert isinstance(reranker, EmbeddingReranker)
    assert reranker.model == "bge-small-en-v1.5-q"
    assert reranker.max_candidates == DEFAULT_RERANK_CANDIDATES
    capped = reranker_for(_rerank_entry("onnx/bge-small-en-v1.5-q", max_candidates=4))
    assert isinstance(capped, EmbeddingReranker) and capped.max_candidates == 4


def test_a_tei_rerank_entry_still_serves_gpus() -> None:
    entry = _rerank_entry("tei/bge-reranker-base", api_base="http://10.0.0.5:8081")
    assert isinstance(reranker_for(entry), TEIReranker)


def test_models_yaml_accepts_onnx_for_rerank_and_checks_the_model_name() -> None:
    body = """
model_list:
  - model_name: chat-default
    litellm_params: {model: ollama_chat/x, api_base: "http://127.0.0.1:11434",
                     timeout: 60, max_retries: 0}
  - model_name: embed-default
    litellm_params: {model: local/all-MiniLM-L6-v2, timeout: 30, max_retries: 0}
    model_info: {mode: embedding}
  - model_name: rerank-default
    litellm_params: {model: MODEL, timeout: 3, max_retries: 0, max_candidates: 8}
    model_info: {mode: rerank}
"""
    config = parse_models(body.replace("MODEL", "onnx/bge-small-en-v1.5-q"))
    assert config.entry("rerank-default").provider == "onnx"
    with pytest.raises(Exception, match="unknown ONNX model"):
        parse_models(body.replace("MODEL", "onnx/not-a-model"))


def test_a_new_models_file_carries_the_cpu_reranker_commented_out_ready_to_enable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.models.config import ensure_models_file
    from gateway.settings import Settings

    monkeypatch.setenv("HOLDFAST_MODELS_DIR", str(tmp_path))
    text = ensure_models_file(Settings(home=tmp_path)).read_text(encoding="utf-8")
    assert "rerank-default" not in [e.model_name for e in parse_models(text).model_list]
    enabled = "\n".join(
        line[2:] if line.startswith(("# - ", "#   ")) else line for line in text.splitlines()
    )
    entry = parse_models(enabled).entry("rerank-default")
    reranker = reranker_for(entry)
    assert isinstance(reranker, EmbeddingReranker)
    assert reranker.max_candidates == DEFAULT_RERANK_CANDIDATES == 4
