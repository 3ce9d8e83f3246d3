"""PII redaction spread over worker processes, so the redaction stage uses every core.

spaCy NER holds the GIL; threads would not help. Each worker process builds its own redactor
once (from a picklable factory) and redacts batches of texts.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from services.ports import Redactor
from services.records import EntitySpan, Redaction

_worker_redactor: Any = None


def _init(factory: Callable[[], Any]) -> None:
    global _worker_redactor
    _worker_redactor = factory()
    warm_up = getattr(_worker_redactor, "warm_up", None)
    if warm_up is not None:
        warm_up()


def _redact_batch(texts: list[str]) -> list[Redaction]:
    return [_worker_redactor.redact(t) for t in texts]


def _find(text: str) -> list[EntitySpan]:
    return list(_worker_redactor.find(text))


class PooledRedactor:
    """``redact_many`` fans batches out to ``workers`` processes; ``redact`` does one text."""

    def __init__(
        self, factory: Callable[[], Redactor], *, workers: int, batch_size: int = 8
    ) -> None:
        self._factory = factory
        self._workers = workers
        self._batch_size = batch_size
        self._pool: ProcessPoolExecutor | None = None

    def warm_up(self) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init,
                initargs=(self._factory,),
            )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def redact_many(self, texts: Sequence[str]) -> list[Redaction]:
        if not texts:
            return []
        self.warm_up()
        assert self._pool is not None
        batches = [
            list(texts[i : i + self._batch_size]) for i in range(0, len(texts), self._batch_size)
        ]
        return [r for batch in self._pool.map(_redact_batch, batches) for r in batch]

    def redact(self, text: str) -> Redaction:
        return self.redact_many([text])[0]

    def find(self, text: str) -> list[EntitySpan]:
        self.warm_up()
        assert self._pool is not None
        return self._pool.submit(_find, text).result()
