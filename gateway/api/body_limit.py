"""The request-body limit, by the bytes that arrive, not by what the client declares.

A declared ``Content-Length`` over the limit is refused before a byte is read. A chunked upload
declares nothing, so the body is also counted as it streams in: the first chunk past the limit
stops the read, and whatever the app would have answered to a body cut short is replaced by the
same 413 problem+json.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.problems import problem
from services.errors import HoldfastError


class BodyTooLargeError(HoldfastError):
    status, code, title = 413, "body_too_large", "Request body too large"


class BodyLimitMiddleware:
    """``max_bytes`` for every body; ``upload_limits`` give POSTs to upload paths their own."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, upload_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self._max = max_bytes
        self._uploads = dict(upload_limits or {})

    def _limit(self, scope: Scope) -> int:
        if scope["method"] == "POST":
            return self._uploads.get(scope["path"], self._max)
        return self._max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = Request(scope).headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        received = 0
        over = started = False

        async def counted() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    raise BodyTooLargeError(f"the body may be at most {limit} bytes")
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:  # the app's answer to a body cut short (a 400, a 500) is not sent
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await self._refuse(scope, receive, send, limit)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        error = BodyTooLargeError()
        response = problem(
            Request(scope, receive),
            status=error.status,
            code=error.code,
            title=error.title,
            detail=f"the body may be at most {limit} bytes",
        )
        await response(scope, receive, send)
