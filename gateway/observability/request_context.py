"""Request ids. asgi-correlation-id accepts a well-formed ``X-Request-ID`` or mints one, and
echoes it on every response; this module adds what Holdfast needs on top of it: the id in the
request's state (problem responses and audit records read it there) and a per-request
``RequestInfo`` in a context variable, which the log formatter reads."""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from starlette.types import ASGIApp, Receive, Scope, Send

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(slots=True)
class RequestInfo:
    """Mutable on purpose: a dependency running in a worker thread (a copied context) names
    the principal on the same object the request's log lines read."""

    request_id: str
    principal: str = ""


current_request: ContextVar[RequestInfo | None] = ContextVar("holdfast_request", default=None)


def name_principal(name: str) -> None:
    info = current_request.get()
    if info is not None:
        info.principal = name


def valid_request_id(raw: str) -> bool:
    """Only a short token is kept (it lands in logs and audit records); else a fresh id."""
    return _VALID.match(raw) is not None


class _PublishRequestId:
    """Inside the correlation-id middleware: hand the accepted id to the layers below."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = correlation_id.get()
        if scope["type"] != "http" or rid is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["request_id"] = rid
        token = current_request.set(RequestInfo(rid))
        try:
            await self.app(scope, receive, send)
        finally:
            current_request.reset(token)


class RequestIdMiddleware:
    """``X-Request-ID`` in (validated) and out, in the request's state and in every log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = CorrelationIdMiddleware(
            _PublishRequestId(app), header_name=HEADER, validator=valid_request_id
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
