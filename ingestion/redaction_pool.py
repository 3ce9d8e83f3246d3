"""PII redaction spread over worker processes, so the redaction stage uses every core.

spaCy NER holds the GIL; threads would not help. Each worker process builds its own redactor
once (from a picklable factory) and redacts a share of the texts, with the redactor's batched
``redact_many`` (one spaCy ``pipe`` pass) when it has one. ``warm_up`` starts every worker and
waits until each has loaded its model, so the first batch does not pay for a model load.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from services.errors import RedactorUnavailableError
from services.ports import Redactor
from services.records import EntitySpan, Redaction

_worker_redactor: Any = None


def _init(factory: Callable[[], Any]) -> None:
    global _worker_redactor
    _worker_redactor = factory()
    warm_up = getattr(_worker_redactor, "warm_up", None)
    if warm_up is not None:
        warm_up()


def _ready(delay_s: float) -> int:
    """Answered once the worker's initializer ran; the pause keeps one worker from taking every
    warm-up task, so each worker process is started."""
    import time

    time.sleep(delay_s)
    return os.getpid()


def _redact_batch(texts: list[str]) -> list[Redaction]:
    many = getattr(_worker_redactor, "redact_many", None)
    if many is not None:
        return list(many(texts))
    return [_worker_redactor.redact(t) for t in texts]


def _find(text: str) -> list[EntitySpan]:
    return list(_worker_redactor.find(text))


def split_even(texts: Sequence[str], parts: int, most: int) -> list[list[str]]:
    """``texts`` in contiguous batches: at least ``parts`` of them when there are enough texts
    (every worker busy), none longer than ``most``."""
    if not texts:
        return []
    count = max(parts, -(-len(texts) // most))
    size = -(-len(texts) // count)
    return [list(texts[i : i + size]) for i in range(0, len(texts), size)]


class PooledRedactor:
    """``redact_many`` fans batches out to ``workers`` processes; ``redact`` does one text."""

    def __init__(
        self,
        factory: Callable[[], Redactor],
        *,
        workers: int,
        batch_size: int = 64,
        timeout_s: float = 300.0,
    ) -> None:
        self._factory = factory
        self._workers = max(1, workers)
        self._batch_size = batch_size
        self._timeout_s = timeout_s  # a stuck worker fails the batch (closed), never hangs it
        self._pool: ProcessPoolExecutor | None = None

    def warm_up(self) -> None:
        if self._pool is None:
            pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init,
                initargs=(self._factory,),
            )
            seen: set[int] = set()
            for _ in range(100):  # until every worker answered (each loads its model first)
                seen.update(pool.map(_ready, [0.1] * self._workers))
                if len(seen) >= self._workers:
                    break
            self._pool = pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def redact_many(self, texts: Sequence[str]) -> list[Redaction]:
        if not texts:
            return []
        self.warm_up()
        assert self._pool is not None
        batches = split_even(texts, self._workers, self._batch_size)
        try:
            done = list(self._pool.map(_redact_batch, batches, timeout=self._timeout_s))
        except TimeoutError as exc:
            raise RedactorUnavailableError(
                f"PII analysis took longer than {self._timeout_s:.0f}s"
            ) from exc
        return [r for batch in done for r in batch]

    def redact(self, text: str) -> Redaction:
        return self.redact_many([text])[0]

    def find(self, text: str) -> list[EntitySpan]:
        self.warm_up()
        assert self._pool is not None
        return self._pool.submit(_find, text).result()
