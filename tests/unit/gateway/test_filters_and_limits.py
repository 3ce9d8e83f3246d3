"""Request filters are validated into typed conditions (rate limits: test_rate_limit.py)."""

from __future__ import annotations

from datetime import UTC, datetime

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
        FieldFilter("modified_at", "lt", datetime(2026, 1, 1, tzinfo=UTC)),  # naive is UTC
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


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"field": "doc_id", "value": 5}', "doc_id takes a string"),
        ('{"field": "title", "value": true}', "title takes a string"),
        ('{"field": "page", "value": 1.5}', "page takes an integer"),
        ('{"field": "position", "value": true}', "position takes an integer"),
        ('{"field": "page", "value": "3"}', "page takes an integer"),
        ('{"field": "ingested_at", "value": 20260101}', "ingested_at takes an ISO 8601"),
        ('{"field": "page", "op": "in", "value": ["1", "2"]}', "text fields only"),
        ('{"field": "modified_at", "op": "in", "value": ["2026-01-01"]}', "text fields only"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_the_field(body: str, expected: str) -> None:
    """The store would refuse it too, but as a 503 counted against the store."""
    with pytest.raises(InvalidRequestError, match=expected):
        to_field_filters([FilterClause.model_validate_json(body)])


@pytest.mark.parametrize(
    "raw",
    ["2026-01-31T09:00:00Z", "2026-01-31T09:00:00", "2026-01-31T10:00:00+01:00"],
)
def test_a_date_string_from_json_becomes_a_utc_datetime(raw: str) -> None:
    body = f'{{"field": "modified_at", "op": "gte", "value": "{raw}"}}'
    [condition] = to_field_filters([FilterClause.model_validate_json(body)])
    assert condition == FieldFilter("modified_at", "gte", datetime(2026, 1, 31, 9, tzinfo=UTC))


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_a_date_utc_cannot_hold_is_refused(raw: str) -> None:
    body = f'{{"field": "ingested_at", "op": "lt", "value": "{raw}"}}'
    with pytest.raises(InvalidRequestError, match=r"ingested_at: .* outside the years 1 to 9999"):
        to_field_filters([FilterClause.model_validate_json(body)])
