"""Request ids: accept a well-formed ``X-Request-ID`` or mint one, echo it on every response,
and expose it to logs through a context variable (the log formatter reads it)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
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


def accept_request_id(raw: str | None) -> str:
    """The caller's id if it is a short token (it lands in logs and audit), else a fresh one."""
    if raw and _VALID.match(raw):
        return raw
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(HEADER.encode())
        rid = accept_request_id(raw.decode("latin-1") if raw else None)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = rid
        token = current_request.set(RequestInfo(rid))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                if HEADER.encode() not in names:
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (HEADER.encode(), rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current_request.reset(token)
