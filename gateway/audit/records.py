"""Typed audit records, the filter a reader asks with, and the opaque page cursor.

Pure logic shared by every audit backend. An audit record holds who, when, which endpoint, the
group set the access filter applied, the decision, ids of documents and chunks, the model alias
and concrete model, and redaction COUNTS by entity type. It never holds question, answer or
document text: the fields that could carry text are ids, names and fixed vocabularies.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, get_args

from services.errors import InvalidRequestError

Decision = Literal["answered", "refused", "denied", "error", "cancelled"]
Kind = Literal["request", "admin"]
DECISIONS: tuple[str, ...] = get_args(Decision)
KINDS: tuple[str, ...] = get_args(Kind)
MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited event. ``id`` is assigned by the store (0 before it is written)."""

    kind: Kind
    principal: str
    endpoint: str
    decision: Decision
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    action: str = ""  # admin actions: key.created, key.revoked, model.swapped, document.deleted…
    status: int = 0  # HTTP status of a request; 0 for actions outside HTTP (CLI, file watch)
    request_id: str = ""
    groups: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()
    chunk_ids: tuple[str, ...] = ()
    alias: str = ""
    model: str = ""
    redactions: dict[str, int] = field(default_factory=dict)
    reason: str = ""  # a fixed code: refusal reason, error code, reload trigger…
    detail: dict[str, str] = field(default_factory=dict)  # admin-only facts: ids, digests
    id: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "at": iso(self.at),
            "kind": self.kind,
            "principal": self.principal,
            "endpoint": self.endpoint,
            "decision": self.decision,
            "action": self.action,
            "status": self.status,
            "request_id": self.request_id,
            "groups": list(self.groups),
            "doc_ids": list(self.doc_ids),
            "chunk_ids": list(self.chunk_ids),
            "alias": self.alias,
            "model": self.model,
            "redactions": dict(self.redactions),
            "reason": self.reason,
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What a reader asks for: newest first, ``limit`` rows older than ``before_id``."""

    limit: int = 50
    before_id: int | None = None
    principal: str | None = None
    decision: str | None = None
    endpoint: str | None = None
    kind: str | None = None
    action_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    next_cursor: str | None


def iso(at: datetime) -> str:
    """A fixed-width UTC timestamp: string order is time order (SQLite compares strings).
    ``isoformat`` pads years before 1000 to four digits; ``strftime("%Y")`` does not."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_time(raw: str, name: str) -> datetime:
    """An ISO 8601 time from a caller, in UTC; naive times are taken as UTC. A time that UTC
    cannot hold (year 1 at +05:00) is refused here, not left to overflow in a query."""
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequestError(
            f"{name}: not an ISO 8601 date or time; send e.g. 2026-01-31T09:00:00Z"
        ) from exc
    return as_utc(value, name)


def as_utc(value: datetime, name: str) -> datetime:
    """``value`` in UTC (naive is taken as UTC), or a 400 when UTC cannot hold it."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidRequestError(
            f"{name}: {value.isoformat()} falls outside the years 1 to 9999 in UTC; "
            "send a time within them"
        ) from exc


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"a{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a page continues below; a cursor this code did not mint is a 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequestError("cursor: not a cursor returned by this endpoint") from exc
    if not raw.startswith("a") or not raw[1:].isdigit() or int(raw[1:]) < 1:
        raise InvalidRequestError("cursor: not a cursor returned by this endpoint")
    return int(raw[1:])


def build_filter(
    *,
    limit: int = 50,
    cursor: str | None = None,
    principal: str | None = None,
    decision: str | None = None,
    endpoint: str | None = None,
    kind: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    """Validate a reader's parameters (API query string or CLI options) into a filter."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidRequestError(f"limit must lie in [1, {MAX_PAGE}]")
    if decision is not None and decision not in DECISIONS:
        raise InvalidRequestError(f"decision must be one of {', '.join(DECISIONS)}")
    if kind is not None and kind not in KINDS:
        raise InvalidRequestError(f"kind must be one of {', '.join(KINDS)}")
    start = parse_time(since, "since") if since else None
    end = parse_time(until, "until") if until else None
    if start and end and start > end:
        raise InvalidRequestError("since lies after until")
    return AuditFilter(
        limit=limit,
        before_id=decode_cursor(cursor) if cursor else None,
        principal=principal or None,
        decision=decision,
        endpoint=endpoint or None,
        kind=kind,
        since=start,
        until=end,
    )


def page_of(rows: list[AuditRecord], limit: int) -> AuditPage:
    """Rows fetched with ``limit + 1``: the extra row only says that another page exists."""
    records = rows[:limit]
    more = len(rows) > limit and records
    return AuditPage(records, encode_cursor(records[-1].id) if more else None)


def decision_for_status(status: int) -> Decision:
    """A request's decision from its HTTP status, when the handler did not state one."""
    if status in (401, 403, 429):
        return "denied"
    if status == 499:  # the client went away first (RequestCancelledError)
        return "cancelled"
    if 200 <= status < 400:
        return "answered"
    return "error"
