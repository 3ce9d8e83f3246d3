"""Which job a free worker takes next, and when a job has been tried enough.

Fairness: the unit of work is one batch of a job, and after each batch the job goes back to
the queue. The next batch goes to the principal (job owner) with the fewest batches running
now, then to the one served least recently (never served first), then to the oldest job. So a
one-file upload waits for at most the batches already running, not for another principal's
whole 1,000-file job, and two big uploads share the workers batch by batch.

Attempts: each claim counts one attempt; recording a file's outcome is progress and resets the
count. A job claimed again after ``max_attempts`` attempts without progress (its batch kept
raising, or kept killing its worker) is given up: its pending files fail with the last reason.
Both stores call these functions, so the policy is stated, and tested, once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Candidate:
    """A job that could run its next batch now."""

    job_id: str
    owner: str
    created_at: str  # ISO-8601 UTC, as the stores write it: orders as text


def fair_order(
    candidates: Sequence[Candidate],
    running: Mapping[str, int],
    served: Mapping[str, float],
) -> list[str]:
    """Job ids, best first. ``running``: owner -> batches leased now; ``served``: owner ->
    when (epoch seconds) a batch of theirs was last claimed."""

    def key(c: Candidate) -> tuple[int, int, float, str, str]:
        last = served.get(c.owner)
        return (
            running.get(c.owner, 0),
            0 if last is None else 1,
            0.0 if last is None else last,
            c.created_at,
            c.job_id,
        )

    return [c.job_id for c in sorted(candidates, key=key)]


def exhausted(attempts: int, max_attempts: int) -> bool:
    """Whether a job that already had ``attempts`` attempts without progress is given up
    rather than claimed for another."""
    return attempts >= max(1, max_attempts)


def give_up_reason(attempts: int, last_error: str) -> str:
    """The reason recorded on each file a given-up job leaves unprocessed."""
    why = last_error or "the worker running it stopped (killed, or out of memory)"
    return f"gave up after {attempts} attempts: {why}"


def error_text(exc: BaseException, limit: int = 300) -> str:
    """A one-line, bounded description of an unexpected exception for the job record."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
