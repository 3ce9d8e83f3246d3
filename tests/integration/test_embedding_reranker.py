"""The in-process ONNX reranker (``onnx/bge-small-en-v1.5-q`` as rerank-default) against real
hits: the real Weaviate hybrid search over the sample handbook, the real MiniLM query vector, the
real bge-small model from the models directory. No reload of the shared stack: the session's
gateway keeps its models (other tests expect it to have no reranker)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gateway.container import reranker_for
from gateway.models.config import ModelEntry, ModelInfo
from gateway.query.retrieval import rerank, retrieve
from gateway.security.keys import Principal
from services.embedding_reranker import EmbeddingReranker
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration

QUESTIONS = (
    "How many days of paid annual leave do full-time employees receive?",
    "Who approves travel expenses above the limit?",
    "What must I do if I lose my laptop?",
    "Can unused leave be carried over to next year?",
)
CAP = 6


def test_the_onnx_reranker_reorders_real_hits_inside_its_cap_and_in_time(
    live_stack: LiveStack,
) -> None:
    entry = ModelEntry(
        model_name="rerank-default",
        litellm_params={
            "model": "onnx/bge-small-en-v1.5-q",
            "timeout": 30,
            "max_retries": 0,
            "max_candidates": CAP,
        },
        model_info=ModelInfo(mode="rerank"),
    )
    reranker = reranker_for(entry)
    assert isinstance(reranker, EmbeddingReranker)
    reranker.warm_up()
    assert reranker.health().ok
    components = live_stack.components
    reader = Principal("tester", ("handbook",), frozenset({"query"}))
    reordered = 0
    for question in QUESTIONS:
        hits = retrieve(
            question,
            reader,
            store=components.store,
            embedder=components.embedder,
            limit=12,
            alpha=0.75,
        )
        assert len(hits) > CAP, "the sample handbook yields more candidates than the cap"
        started = time.monotonic()
        out = rerank(question, hits, reranker)
        assert time.monotonic() - started < 30
        ids = [h.chunk.chunk_id for h in hits]
        out_ids = [h.chunk.chunk_id for h in out]
        assert sorted(out_ids) == sorted(ids), "a permutation: nothing lost, nothing added"
        assert out_ids[CAP:] == ids[CAP:], "past the cap, the retrieval order stands"
        reordered += out_ids[:CAP] != ids[:CAP]
        # the candidate bge-small likes best among the leading ones never sinks below 2nd
        encoder = reranker._encoder  # the same real model, asked directly
        query = np.asarray(encoder.embed_query(question))
        heads = [f"{h.chunk.title} — {h.chunk.section}" for h in hits[:CAP]]
        texts = [
            f"{head}\n{h.chunk.text}"
            if h.chunk.section != h.chunk.title
            else f"{h.chunk.title}\n{h.chunk.text}"
            for head, h in zip(heads, hits[:CAP], strict=True)
        ]
        cosines = np.asarray(encoder.embed_documents(texts)) @ query
        favourite = ids[int(np.argmax(cosines))]
        assert favourite in out_ids[:2]
    assert reordered >= 1, "bge-small disagrees with the hybrid order on at least one question"
    leave = retrieve(
        QUESTIONS[0],
        reader,
        store=components.store,
        embedder=components.embedder,
        limit=12,
        alpha=0.75,
    )
    assert rerank(QUESTIONS[0], leave, reranker)[0].chunk.section.startswith("Annual leave")
