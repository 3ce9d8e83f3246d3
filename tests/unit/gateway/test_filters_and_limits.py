"""Request filters are validated into typed conditions (rate limits: test_rate_limit.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from gateway.query.filters import FilterClause, to_field_filters
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
