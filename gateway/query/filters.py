"""The request filter syntax: a small, validated list of conditions on filterable properties.

Values travel as typed parameters into the store's filter API; nothing is concatenated into a
query string, and the access-group property can never be named (the gateway sets it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.audit.records import as_utc, parse_time
from services.errors import InvalidRequestError
from services.records import FieldFilter

TEXT_FIELDS = {"doc_id", "doc_type", "source", "title", "section", "chunk_id", "parent_id"}
INTEGER_FIELDS = {"page", "position"}
DATE_FIELDS = {"modified_at", "ingested_at"}  # stored in UTC
FILTERABLE = TEXT_FIELDS | INTEGER_FIELDS | DATE_FIELDS

Op = Literal["eq", "ne", "in", "gt", "gte", "lt", "lte", "like"]
Value = str | int | float | datetime


class FilterClause(BaseModel):
    """``{"field": "doc_type", "op": "eq", "value": "pdf"}``; clauses are AND-ed."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(description=f"One of: {', '.join(sorted(FILTERABLE))}.")
    op: Op = "eq"
    # bool is listed so that JSON true stays a bool (and is refused) instead of becoming 1
    value: str | bool | int | float | datetime | list[str] = Field(
        description="A string for text fields, an integer for page and position, an ISO 8601 "
        "date-time for dates (UTC when it has no offset); a list of strings for op 'in'."
    )


def _typed_value(field: str, value: Value) -> Value:
    """``value`` as the store holds ``field``: a mismatch is the caller's 400 here, not a
    type error from the store (a 503 counted as an upstream failure)."""
    if field in TEXT_FIELDS:
        if not isinstance(value, str):
            raise InvalidRequestError(f"{field} takes a string; send the value in quotes")
        return value
    if field in INTEGER_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequestError(f"{field} takes an integer, such as 3")
        return value
    if isinstance(value, datetime):
        return as_utc(value, field)
    if isinstance(value, str):
        return parse_time(value, field)
    raise InvalidRequestError(
        f"{field} takes an ISO 8601 date-time string, such as 2026-01-31T09:00:00Z"
    )


def to_field_filters(clauses: list[FilterClause] | None) -> list[FieldFilter]:
    out: list[FieldFilter] = []
    for clause in clauses or []:
        if clause.field not in FILTERABLE:
            raise InvalidRequestError(
                f"cannot filter on that field; filterable: {', '.join(sorted(FILTERABLE))}"
            )
        value = clause.value
        if clause.op == "in":
            if clause.field not in TEXT_FIELDS:
                raise InvalidRequestError(
                    "op 'in' works on text fields only; use gte and lte for a range"
                )
            if not isinstance(value, list) or not value:
                raise InvalidRequestError("op 'in' needs a non-empty list value")
            out.append(FieldFilter(clause.field, "in", tuple(value)))
            continue
        if isinstance(value, list):
            raise InvalidRequestError(f"op {clause.op!r} needs a single value")
        if clause.op == "like" and clause.field not in TEXT_FIELDS:
            raise InvalidRequestError("op 'like' works on text fields only")
        if clause.op in {"gt", "gte", "lt", "lte"} and clause.field in TEXT_FIELDS:
            raise InvalidRequestError(f"op {clause.op!r} works on numbers and dates only")
        out.append(FieldFilter(clause.field, clause.op, _typed_value(clause.field, value)))
    return out
