"""Fair ordering across principals and attempt accounting: the scheduling policy both job
stores apply."""

from __future__ import annotations

import pytest

from ingestion.scheduling import Candidate, error_text, exhausted, fair_order, give_up_reason

pytestmark = pytest.mark.unit


def test_a_principal_with_nothing_running_goes_before_one_with_a_batch_running() -> None:
    big = Candidate("job_big_2", "alice", "2026-01-01T10:00:00+00:00")
    small = Candidate("job_small", "bob", "2026-01-01T11:00:00+00:00")
    assert fair_order([big, small], running={"alice": 1}, served={}) == ["job_small", "job_big_2"]


def test_the_least_recently_served_principal_goes_first_and_never_served_before_all() -> None:
    jobs = [
        Candidate("a1", "alice", "2026-01-01T09:00:00+00:00"),
        Candidate("b1", "bob", "2026-01-01T10:00:00+00:00"),
        Candidate("c1", "carol", "2026-01-01T11:00:00+00:00"),
    ]
    served = {"alice": 200.0, "bob": 100.0}
    assert fair_order(jobs, running={}, served=served) == ["c1", "b1", "a1"]


def test_a_stream_of_small_jobs_does_not_starve_a_big_one() -> None:
    """Round robin by owner, not by job: bob's fresh jobs do not jump alice's turn."""
    big = Candidate("a1", "alice", "2026-01-01T09:00:00+00:00")
    fresh = Candidate("b7", "bob", "2026-01-01T12:00:00+00:00")
    assert fair_order([big, fresh], running={}, served={"alice": 10.0, "bob": 20.0}) == [
        "a1",
        "b7",
    ]


def test_within_one_principal_the_oldest_job_goes_first() -> None:
    jobs = [
        Candidate("late", "alice", "2026-01-01T12:00:00+00:00"),
        Candidate("early", "alice", "2026-01-01T09:00:00+00:00"),
    ]
    assert fair_order(jobs, running={}, served={"alice": 5.0}) == ["early", "late"]


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "given_up"),
    [(0, 3, False), (2, 3, False), (3, 3, True), (4, 3, True), (1, 1, True), (0, 0, False)],
)
def test_a_job_is_given_up_once_it_has_had_max_attempts(
    attempts: int, max_attempts: int, given_up: bool
) -> None:
    assert exhausted(attempts, max_attempts) is given_up


def test_the_give_up_reason_names_the_attempts_and_the_last_error() -> None:
    assert give_up_reason(3, "RuntimeError: boom") == "gave up after 3 attempts: RuntimeError: boom"
    assert "stopped" in give_up_reason(2, "")
    long = error_text(ValueError("x" * 1000), limit=50)
    assert len(long) == 50 and long.startswith("ValueError: x")
    assert error_text(KeyError()) == "KeyError"
