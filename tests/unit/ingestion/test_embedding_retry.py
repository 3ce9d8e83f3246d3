"""embed_batches: transient failures are retried with doubling, capped backoff; when the tries
run out the error says how often the embedding service failed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ingestion.embedding import EmbeddingPolicy, embed_batches
from services.errors import BackendTimeoutError, EmbedderUnavailableError, InvalidRequestError

pytestmark = pytest.mark.unit


class FlakyEmbedder:
    """Fails its first ``failures`` calls with ``error``, then embeds each text as [len]."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return [[float(len(t))] for t in texts]


POLICY = EmbeddingPolicy(batch_size=2, retries=4, backoff_s=0.5, max_backoff_s=1.5)


def test_a_short_outage_is_ridden_out_with_doubling_capped_waits() -> None:
    embedder = FlakyEmbedder(4, EmbedderUnavailableError("down"))
    waits: list[float] = []
    vectors = embed_batches(embedder, ["a", "bb", "ccc"], POLICY, sleep=waits.append)  # type: ignore[arg-type]
    assert vectors == [[1.0], [2.0], [3.0]]
    assert waits == [0.5, 1.0, 1.5, 1.5]


def test_when_retries_run_out_the_error_counts_the_failures() -> None:
    embedder = FlakyEmbedder(99, BackendTimeoutError("ollama embeddings (m) timed out"))
    waits: list[float] = []
    with pytest.raises(EmbedderUnavailableError, match=r"failed 5 times: .*timed out") as info:
        embed_batches(embedder, ["a"], POLICY, sleep=waits.append)  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, BackendTimeoutError)
    assert embedder.calls == 5 and len(waits) == 4


def test_errors_that_are_not_transient_are_not_retried() -> None:
    embedder = FlakyEmbedder(1, InvalidRequestError("bad input"))
    with pytest.raises(InvalidRequestError):
        embed_batches(embedder, ["a"], POLICY, sleep=lambda _: None)  # type: ignore[arg-type]
    assert embedder.calls == 1
