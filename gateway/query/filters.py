"""The request filter syntax: a small, validated list of conditions on filterable properties.

Values travel as typed parameters into the store's filter API; nothing is concatenated into a
query string, and the access-group property can never be named (the gateway sets it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.errors import InvalidRequestError
from services.records import FieldFilter

TEXT_FIELDS = {"doc_id", "doc_type", "source", "title", "section", "chunk_id", "parent_id"}
NUMBER_FIELDS = {"page", "position"}
DATE_FIELDS = {"modified_at", "ingested_at"}
FILTERABLE = TEXT_FIELDS | NUMBER_FIELDS | DATE_FIELDS

Op = Literal["eq", "ne", "in", "gt", "gte", "lt", "lte", "like"]


class FilterClause(BaseModel):
    """``{"field": "doc_type", "op": "eq", "value": "pdf"}``; clauses are AND-ed."""

    model_config = ConfigDict(extra="forbid")
    field: str = Field(description=f"One of: {', '.join(sorted(FILTERABLE))}.")
    op: Op = "eq"
    value: str | int | float | datetime | list[str]


def to_field_filters(clauses: list[FilterClause] | None) -> list[FieldFilter]:
    out: list[FieldFilter] = []
    for clause in clauses or []:
        if clause.field not in FILTERABLE:
            raise InvalidRequestError(
                f"cannot filter on that field; filterable: {', '.join(sorted(FILTERABLE))}"
            )
        value = clause.value
        if clause.op == "in":
            if not isinstance(value, list) or not value:
                raise InvalidRequestError("op 'in' needs a non-empty list value")
            out.append(FieldFilter(clause.field, "in", tuple(str(v) for v in value)))
            continue
        if isinstance(value, list):
            raise InvalidRequestError(f"op {clause.op!r} needs a single value")
        if clause.field in NUMBER_FIELDS and not isinstance(value, int | float):
            raise InvalidRequestError(f"{clause.field} takes a number")
        if clause.field in DATE_FIELDS and not isinstance(value, datetime):
            raise InvalidRequestError(f"{clause.field} takes an ISO 8601 date-time")
        if clause.op == "like" and clause.field not in TEXT_FIELDS:
            raise InvalidRequestError("op 'like' works on text fields only")
        if clause.op in {"gt", "gte", "lt", "lte"} and clause.field in TEXT_FIELDS:
            raise InvalidRequestError(f"op {clause.op!r} works on numbers and dates only")
        out.append(FieldFilter(clause.field, clause.op, value))
    return out
