"""One audit record per HTTP request, written after the response (streams: after the last byte).

Handlers enrich the record through ``request.state.audit`` (an ``AuditContext``): the decision,
ids of documents and chunks returned or cited, alias and model, redaction counts. Everything
else (principal, group set, route template, status, request id) comes from the request itself.
Route templates, never raw paths, name the endpoint: a path can carry user text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.audit.records import AuditRecord, Decision, decision_for_status
from gateway.audit.store import AuditLog
from gateway.observability.asgi import capture_status
from services.errors import HoldfastError

log = logging.getLogger("holdfast.audit")

UNAUDITED = frozenset({"/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
# Requests that are admin actions: the route template names the action.
ADMIN_ROUTES: Mapping[str, str] = {
    "DELETE /v1/documents/{doc_id}": "document.deleted",
    "POST /admin/reload": "model.reload",
}


@dataclass(slots=True)
class AuditContext:
    """What a handler learnt that the audit record needs. Ids and counts only."""

    decision: Decision | None = None
    reason: str = ""
    doc_ids: list[str] = field(default_factory=list)
    chunk_ids: list[str] = field(default_factory=list)
    alias: str = ""
    model: str = ""
    redactions: dict[str, int] = field(default_factory=dict)
    # for the metrics only (not stored in the audit record)
    timings_ms: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)

    def add_hits(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(doc_id, chunk_id) pairs, in order, without repeats."""
        for doc_id, chunk_id in pairs:
            if doc_id not in self.doc_ids:
                self.doc_ids.append(doc_id)
            if chunk_id not in self.chunk_ids:
                self.chunk_ids.append(chunk_id)


def endpoint_of(scope: Scope) -> str | None:
    """``METHOD /route/{template}``; ``None`` when no route matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return f"{scope['method']} {path}" if path else None


def build_record(scope: Scope, status: int, failure: str = "") -> AuditRecord:
    state: dict[str, Any] = scope.get("state") or {}
    ctx: AuditContext = state.get("audit") or AuditContext()
    principal = state.get("principal")
    endpoint = endpoint_of(scope) or f"{scope['method']} (no route)"
    action = ADMIN_ROUTES.get(endpoint, "")
    doc_ids = list(ctx.doc_ids)
    params = scope.get("path_params") or {}
    if action == "document.deleted" and "doc_id" in params and status < 300:
        doc_ids = [str(params["doc_id"])]
    decision = decision_for_status(status) if status >= 300 else (ctx.decision or "answered")
    return AuditRecord(
        kind="admin" if action else "request",
        principal=principal.name if principal is not None else "anonymous",
        endpoint=endpoint,
        decision=decision,
        action=action,
        status=status,
        request_id=str(state.get("request_id", "")),
        groups=tuple(principal.groups) if principal is not None else (),
        doc_ids=tuple(doc_ids),
        chunk_ids=tuple(ctx.chunk_ids),
        alias=ctx.alias,
        model=ctx.model,
        redactions=dict(ctx.redactions),
        reason=failure or (str(state.get("error_code", "")) if status >= 300 else "") or ctx.reason,
    )


class AuditMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        get_log: Callable[[], AuditLog | None],
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self.app = app
        self.get_log = get_log
        self.on_failure = on_failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNAUDITED:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["audit"] = AuditContext()
        send, status = capture_status(send)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            code = exc.code if isinstance(exc, HoldfastError) else "internal_error"
            await self._write(build_record(scope, 500, code))
            raise
        await self._write(build_record(scope, status.code))

    async def _write(self, record: AuditRecord) -> None:
        log.info("%s -> %d %s", record.endpoint, record.status, record.decision)
        audit = self.get_log()
        if audit is None:  # the app has not finished starting
            return
        offer = getattr(audit, "offer", None)  # a buffered log queues without a thread hop
        if offer is not None and offer(record):
            return
        try:
            await run_in_threadpool(audit.append, record)
        except HoldfastError:
            self.on_failure()
            log.error(
                "audit record lost: the audit log is unavailable (request %s)", record.request_id
            )


def audit_context(state: Any) -> AuditContext:
    """The request's context (a throwaway one when no audit middleware runs, e.g. unit tests)."""
    ctx = getattr(state, "audit", None)
    return ctx if isinstance(ctx, AuditContext) else AuditContext()


def note_answer(ctx: AuditContext, answer: Any) -> None:
    """Copy ids and counts of an ``answering.Answer`` (never its text) into the record."""
    ctx.decision = "refused" if answer.refused else "answered"
    ctx.reason = answer.refusal_reason or ""
    ctx.add_hits((c.doc_id, c.chunk_id) for c in answer.citations)
    ctx.alias = answer.alias or ""
    ctx.model = answer.model or ""
    ctx.redactions = dict(answer.redactions)
    ctx.timings_ms = dict(answer.timings_ms)
    ctx.usage = dict(answer.usage)


Event = tuple[str, dict[str, Any]]


def track_events(events: Iterable[Event], ctx: AuditContext) -> Iterator[Event]:
    """Pass a stream of answer events through, noting ids and the outcome as they go by."""
    for name, data in events:
        if name == "retrieval":
            ctx.add_hits((c["doc_id"], c["chunk_id"]) for c in data.get("citations", []))
            if data.get("retrieval_status") != "ok":
                ctx.decision, ctx.reason = "refused", str(data.get("retrieval_status", ""))
        elif name == "done":
            if ctx.decision != "refused":  # a weak retrieval already decided
                refused = bool(data.get("refused"))
                ctx.decision = "refused" if refused else "answered"
                reason = str(data.get("refusal_reason") or "model_declined")
                ctx.reason = reason if refused else ""
            ctx.model = str(data.get("model") or "")
            ctx.redactions = {str(k): int(v) for k, v in data.get("redactions", {}).items()}
            ctx.usage = {str(k): int(v) for k, v in data.get("usage", {}).items()}
        elif name == "error":
            ctx.decision, ctx.reason = "error", str(data.get("code", ""))
        yield name, data
