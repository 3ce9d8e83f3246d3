"""Map errors to RFC 9457 ``application/problem+json``. ``detail`` never echoes user text."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.errors import HoldfastError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("holdfast.gateway")


def request_id(request: Request) -> str:
    """The id the request-id middleware accepted or minted; without that middleware (a bare
    app in a test), the caller's header or a fresh id."""
    rid = getattr(request.state, "request_id", None)
    if rid is None:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = rid
    return str(rid)


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    echoed = getattr(request.state, "request_id", None) is not None  # by the middleware
    rid = request_id(request)
    body = {
        "type": f"https://holdfast.invalid/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        # the route's template, never the raw path: a path carries caller text (an id that is
        # a pasted secret or a social security number)
        "instance": getattr(request.scope.get("route"), "path", None) or "(no route)",
        "code": code,
        "request_id": rid,
    }
    return JSONResponse(
        body,
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={**({} if echoed else {"x-request-id": rid}), **(headers or {})},
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(HoldfastError)
    async def _holdfast(request: Request, exc: HoldfastError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        retry_after = getattr(exc, "retry_after_s", None)
        if retry_after is not None:
            headers = {"Retry-After": str(int(retry_after + 0.999))}
        if exc.status >= 500:
            log.warning("backend error %s: %s", exc.code, exc, exc_info=exc.__cause__)
        return problem(
            request,
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=str(exc),
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = sorted({".".join(str(p) for p in err.get("loc", ())[1:]) for err in exc.errors()})
        return problem(
            request,
            status=422,
            code="validation_failed",
            title="Request body is invalid",
            detail="invalid or missing field(s): " + ", ".join(f or "(body)" for f in fields),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(
            request,
            status=exc.status_code,
            code=f"http_{exc.status_code}",
            title=str(exc.detail),
            detail=str(exc.detail),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(
            request,
            status=500,
            code="internal_error",
            title="Internal error",
            detail="an unexpected error occurred; the request id identifies it in the logs",
        )
