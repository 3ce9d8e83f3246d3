"""Reranking on the CPU with a second bi-encoder: no cross-encoder needed, nothing from a hub.

No cross-encoder reranker is packaged on a registry the install can reach, so this adapter
re-scores the leading candidates with an in-process ONNX embedding model other than the one the
index was built with (by default bge-small-en-v1.5 int8, which scripts/install-models.sh fetches
beside MiniLM): the cosine of the query's and each candidate's vector. That score is then fused
with the retrieval order by weighted reciprocal rank, so a candidate both signals like rises and
one lucky cosine does not throw out what BM25 and the index's vectors agreed on.

Only the first ``max_candidates`` texts are scored (the cost is one encoder pass per text), and
embedding stops at the first batch boundary after ``timeout_s``: the candidates embedded by then
are reranked, the others keep their retrieval order after them (``rerank`` in the query path puts
unscored texts last, in the order given).

Measured on the Python-docs fast subset (71 answerable questions, 2 cores at load average ~9.5,
December 2026): 4 candidates gave nDCG@10 0.948 -> 0.958 and hit@1 0.901 -> 0.930 (4 questions
better, none worse) for +1.24 s p50 / +1.59 s p95 a query; 8 candidates 0.962 and 0.944 for
+1.96 s / +2.71 s. The chat model cannot serve instead: Ollama 0.12.6 returns no logprobs, and
one 370-token yes/no prompt took 10 s on the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from services.errors import HoldfastError, RerankerUnavailableError
from services.records import HealthStatus, RerankScore


class QueryDocumentEncoder(Protocol):
    """What the reranker needs of an embedder: unit vectors for a query and for passages."""

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def fused_scores(
    similarities: Sequence[float], *, rank_constant: float, weight: float
) -> list[float]:
    """Weighted reciprocal-rank fusion of the retrieval order (the texts' order) with the order
    of ``similarities``: ``1/(k + retrieval rank) + weight/(k + similarity rank)``, ranks from 1.
    Ties in similarity keep the retrieval order."""
    by_similarity = sorted(range(len(similarities)), key=lambda i: (-similarities[i], i))
    similarity_rank = {index: rank for rank, index in enumerate(by_similarity, start=1)}
    return [
        1.0 / (rank_constant + i + 1) + weight / (rank_constant + similarity_rank[i])
        for i in range(len(similarities))
    ]


class EmbeddingReranker:
    """The ``Reranker`` port over an in-process encoder (``OnnxEmbedder``); no network."""

    def __init__(
        self,
        encoder: QueryDocumentEncoder,
        model: str,
        *,
        max_candidates: int,
        timeout_s: float,
        batch_size: int = 4,
        rank_constant: float = 10.0,
        weight: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_candidates < 1:
            raise ValueError("max_candidates must be at least 1")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._encoder = encoder
        self._model = model
        self._max_candidates = max_candidates
        self._timeout_s = timeout_s
        self._batch_size = batch_size
        self._rank_constant = rank_constant
        self._weight = weight
        self._clock = clock

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_candidates(self) -> int:
        return self._max_candidates

    def warm_up(self) -> None:
        warm = getattr(self._encoder, "warm_up", None)
        if callable(warm):
            warm()

    def close(self) -> None:
        close = getattr(self._encoder, "close", None)
        if callable(close):
            close()

    def rerank(self, query: str, texts: Sequence[str]) -> list[RerankScore]:
        """Scores for the leading texts embedded within the time budget, best first; texts
        past the cap or the budget get no score."""
        head = list(texts[: self._max_candidates])
        if len(head) < 2:
            return [RerankScore(i, 0.0) for i in range(len(head))]
        deadline = self._clock() + self._timeout_s
        try:
            query_vector = self._encoder.embed_query(query)
            vectors: list[list[float]] = []
            for start in range(0, len(head), self._batch_size):
                if start and self._clock() > deadline:
                    break  # out of time: the ones embedded so far are reranked
                vectors.extend(
                    self._encoder.embed_documents(head[start : start + self._batch_size])
                )
        except HoldfastError as exc:
            raise RerankerUnavailableError(f"embedding reranker ({self._model}): {exc}") from exc
        similarities = [
            sum(q * v for q, v in zip(query_vector, vector, strict=True)) for vector in vectors
        ]
        scores = fused_scores(similarities, rank_constant=self._rank_constant, weight=self._weight)
        ranked = [RerankScore(i, score) for i, score in enumerate(scores)]
        return sorted(ranked, key=lambda s: (-s.score, s.index))

    def health(self) -> HealthStatus:
        status = getattr(self._encoder, "health", None)
        if callable(status):
            inner = status()
            if isinstance(inner, HealthStatus):
                return HealthStatus("reranker", inner.ok, inner.detail or self._model)
        return HealthStatus("reranker", True, self._model)
