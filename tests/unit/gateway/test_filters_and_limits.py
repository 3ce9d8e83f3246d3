"""Request filters are validated into typed conditions; rate limiting is a token bucket."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.query.filters import FilterClause, to_field_filters
from gateway.security.rate_limit import RateLimiter, RateLimitExceeded
from services.errors import InvalidRequestError
from services.records import FieldFilter

pytestmark = pytest.mark.unit


def test_valid_clauses_become_typed_field_filters() -> None:
    clauses = [
        FilterClause(field="doc_type", op="eq", value="pdf"),
        FilterClause(field="page", op="gte", value=3),
        FilterClause(field="source", op="in", value=["a.md", "b.md"]),
        FilterClause(field="modified_at", op="lt", value=datetime(2026, 1, 1)),
    ]
    assert to_field_filters(clauses) == [
        FieldFilter("doc_type", "eq", "pdf"),
        FieldFilter("page", "gte", 3),
        FieldFilter("source", "in", ("a.md", "b.md")),
        FieldFilter("modified_at", "lt", datetime(2026, 1, 1)),
    ]


@pytest.mark.parametrize(
    "clause",
    [
        FilterClause(field="access_groups", op="eq", value="admin"),  # never filterable
        FilterClause(field="text", op="like", value="*"),
        FilterClause(field="page", op="eq", value="three"),
        FilterClause(field="title", op="gt", value="a"),
        FilterClause(field="source", op="in", value=[]),
        FilterClause(field="modified_at", op="eq", value="yesterday"),
    ],
)
def test_invalid_clauses_are_rejected_with_a_reason(clause: FilterClause) -> None:
    with pytest.raises(InvalidRequestError):
        to_field_filters([clause])


def test_bucket_allows_the_burst_then_refuses_with_retry_after() -> None:
    now = [0.0]
    limiter = RateLimiter(rate_per_minute=60, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("k")
    with pytest.raises(RateLimitExceeded) as refused:
        limiter.check("k")
    assert refused.value.retry_after_s >= 1
    limiter.check("other")  # buckets are per key
    now[0] += 1.0  # one token per second at 60/min
    limiter.check("k")
