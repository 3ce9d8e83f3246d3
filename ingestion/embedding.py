"""Embedding in batches with bounded concurrency and retries with backoff, and the text a chunk
is embedded as.

What the model reads for a chunk is its heading line (document title and section path, as
``Title > Section > Subsection``) and then its body; the heading gives a short chunk its context
and puts the page's subject in every chunk of the page. The body alone is what users are shown.
The chunker pays for the heading out of the same token budget (``ingestion.chunking``).

Transient failures (the service unavailable or timing out) are retried with exponential backoff;
when retries run out the error says the embedding service is down, and nothing is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.errors import BackendTimeoutError, BackendUnavailableError, EmbedderUnavailableError
from services.ports import Embedder


def embedding_heading(title: str, section: str) -> str:
    """The line the model reads before a chunk's body: ``title > section path``."""
    return " > ".join(part for part in (title.strip(), section.strip()) if part)


def embedding_text(title: str, section: str, body: str) -> str:
    """What the embedding model reads for one chunk."""
    heading = embedding_heading(title, section)
    return f"{heading}\n{body}" if heading else body


@dataclass(frozen=True, slots=True)
class EmbeddingPolicy:
    batch_size: int = 64
    concurrency: int = 1
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0


_TRANSIENT = (BackendUnavailableError, BackendTimeoutError)


def _with_retry(
    embedder: Embedder,
    batch: Sequence[str],
    policy: EmbeddingPolicy,
    sleep: Callable[[float], None],
) -> list[list[float]]:
    retrying = Retrying(
        stop=stop_after_attempt(policy.retries + 1),
        # backoff_s, then doubling, at most max_backoff_s
        wait=wait_exponential(multiplier=policy.backoff_s, max=policy.max_backoff_s),
        retry=retry_if_exception_type(_TRANSIENT),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(embedder.embed_documents, batch)
    except _TRANSIENT as exc:  # every try failed
        raise EmbedderUnavailableError(
            f"embedding service failed {policy.retries + 1} times: {exc}"
        ) from exc


def embed_batches(
    embedder: Embedder,
    texts: Sequence[str],
    policy: EmbeddingPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[list[float]]:
    """Vectors for ``texts`` in order, ``policy.batch_size`` at a time."""
    batches = [texts[i : i + policy.batch_size] for i in range(0, len(texts), policy.batch_size)]
    if policy.concurrency <= 1 or len(batches) <= 1:
        results = [_with_retry(embedder, b, policy, sleep) for b in batches]
    else:
        with ThreadPoolExecutor(max_workers=policy.concurrency) as pool:
            results = list(pool.map(lambda b: _with_retry(embedder, b, policy, sleep), batches))
    return [vector for batch in results for vector in batch]
