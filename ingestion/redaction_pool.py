"""PII redaction spread over worker processes, so the redaction stage uses every core.

spaCy NER holds the GIL; threads would not help. Each worker process builds its own redactor
once (from a picklable factory) and analyses a share of the texts, with the redactor's batched
``find_many`` / ``redact_many`` (one spaCy ``pipe`` pass) when it has them. Workers return spans
(offsets and types, never values); placeholders are numbered per document by the caller.
``warm_up`` starts every worker and waits until each has loaded its model, so the first batch
does not pay for a model load.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from services.errors import RedactorUnavailableError
from services.ports import Redactor
from services.records import EntitySpan, Redaction
from services.redaction_profile import RedactionProfile

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


def _kwargs(profile: str | None) -> dict[str, Any]:
    return {} if profile is None else {"profile": RedactionProfile(profile)}


def _redact_batch(job: tuple[list[str], str | None]) -> list[Redaction]:
    texts, profile = job
    many = getattr(_worker_redactor, "redact_many", None)
    if many is not None:
        return list(many(texts, **_kwargs(profile)))
    return [_worker_redactor.redact(t, **_kwargs(profile)) for t in texts]


def _find_batch(job: tuple[list[str], str | None]) -> list[list[EntitySpan]]:
    texts, profile = job
    many = getattr(_worker_redactor, "find_many", None)
    if many is not None:
        return [list(s) for s in many(texts, **_kwargs(profile))]
    return [list(_worker_redactor.find(t, **_kwargs(profile))) for t in texts]


def _find(job: tuple[str, str | None]) -> list[EntitySpan]:
    text, profile = job
    return list(_worker_redactor.find(text, **_kwargs(profile)))


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
        timeout_s: float,
        batch_size: int = 64,
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

    def _fan_out(
        self, fn: Callable[[Any], list[Any]], texts: Sequence[str], profile: str | None
    ) -> list[Any]:
        self.warm_up()
        assert self._pool is not None
        batches = [(b, profile) for b in split_even(texts, self._workers, self._batch_size)]
        try:
            done = list(self._pool.map(fn, batches, timeout=self._timeout_s))
        except TimeoutError as exc:
            raise RedactorUnavailableError(
                f"PII analysis took longer than {self._timeout_s:.0f}s"
            ) from exc
        except BrokenProcessPool:
            # a process died (out of memory, a native crash): the next batch gets a fresh pool;
            # this one's job is retried (ingestion.max_attempts), not failed as a backend outage
            self.close()
            raise
        return [r for batch in done for r in batch]

    def find_many(
        self, texts: Sequence[str], *, profile: RedactionProfile | None = None
    ) -> list[list[EntitySpan]]:
        """Spans of each text, analysed by the worker processes."""
        if not texts:
            return []
        return self._fan_out(_find_batch, texts, None if profile is None else profile.value)

    def redact_many(
        self, texts: Sequence[str], *, profile: RedactionProfile | None = None
    ) -> list[Redaction]:
        if not texts:
            return []
        return self._fan_out(_redact_batch, texts, None if profile is None else profile.value)

    def redact(self, text: str, *, profile: RedactionProfile | None = None) -> Redaction:
        return self.redact_many([text], profile=profile)[0]

    def find(self, text: str, *, profile: RedactionProfile | None = None) -> list[EntitySpan]:
        self.warm_up()
        assert self._pool is not None
        job = (text, None if profile is None else profile.value)
        return self._pool.submit(_find, job).result()
