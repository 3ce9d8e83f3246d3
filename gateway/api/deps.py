"""FastAPI dependencies as typed aliases, so a handler's signature says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from starlette.concurrency import run_in_threadpool

from gateway.components import Components
from gateway.observability.request_context import name_principal
from gateway.security.keys import Principal
from services.errors import AccessDeniedError, AuthenticationError

_bearer = HTTPBearer(auto_error=False, description="A Holdfast API key.")


async def get_components(request: Request) -> Components:
    """Async on purpose, as every dependency here: FastAPI runs a plain ``def`` dependency in a
    worker thread, a round trip of about 0.2 ms on every request for a dictionary read."""
    return request.app.state.components  # type: ignore[no-any-return]


ComponentsDep = Annotated[Components, Depends(get_components)]


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_principal(request: Request, credentials: BearerDep) -> Principal:
    """The caller, from a remembered verified key on the event loop (no I/O), else from the key
    store or the JWT verifier in a worker thread (a store or JWKS round trip never blocks the
    loop)."""
    components = await get_components(request)
    tracer = getattr(request.app.state, "tracer", None) or trace.NoOpTracer()
    with tracer.start_as_current_span("auth", record_exception=False) as span:
        if credentials is None or not credentials.credentials:
            span.set_attribute("holdfast.auth.outcome", "missing")
            raise AuthenticationError("send Authorization: Bearer <api key or token>")
        token = credentials.credentials
        try:
            principal = components.authenticator.remembered(token)
            if principal is None:
                principal = await run_in_threadpool(components.authenticator.authenticate, token)
        except AuthenticationError:
            span.set_attribute("holdfast.auth.outcome", "rejected")
            raise
        span.set_attribute("holdfast.auth.outcome", "ok")
        span.set_attribute("holdfast.auth.method", "api_key" if principal.key_id else "jwt")
        span.set_attribute("holdfast.auth.groups", len(principal.groups))
        if principal.key_id:
            span.set_attribute("holdfast.auth.key_id", principal.key_id)
    request.state.principal = principal  # for the audit record and the log lines
    name_principal(principal.name)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def rate_limited(principal: PrincipalDep, components: ComponentsDep) -> Principal:
    """Count the request against the caller's limit: one count per key, shared by every route
    and, with ``limits.storage_url``, by every replica. The in-memory count runs on the event
    loop (microseconds); a shared one goes through a worker thread, so a slow Redis (bounded by
    its timeout) never blocks the loop."""
    limiter = components.rate_limiter
    key = principal.key_id or principal.name
    if limiter.shared:
        await run_in_threadpool(limiter.check, key)
    else:
        limiter.check(key)
    return principal


def require_role(role: str):  # type: ignore[no-untyped-def]
    """One dependency for authentication, the role check and the rate limit, in that order.
    FastAPI walks a dependency tree on every request, and each node costs (issue 19's profile:
    about a quarter of a search's event-loop time went to solving seven nodes); this one has two."""

    async def _check(request: Request, credentials: BearerDep) -> Principal:
        principal = await get_principal(request, credentials)
        if role not in principal.roles:
            raise AccessDeniedError(f"this endpoint needs the {role!r} role")
        return await rate_limited(principal, await get_components(request))

    return _check


QueryPrincipalDep = Annotated[Principal, Depends(require_role("query"))]
