"""Stop the work for a client that went away: its model call holds one of the model server's
few slots for as long as it runs, so an abandoned answer must not run on to its timeout.

The edge learns of the disconnect from the ASGI server (an ``http.disconnect`` message) and
sets the request's ``Cancellation``; the model call, in a worker thread, sees it between the
pieces the model sends and closes its connection, which stops the model server. The request
then ends as ``cancelled`` in the audit record and the metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from sse_starlette import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.types import Message, Receive

from gateway.api.audit_middleware import AuditContext
from services.cancellation import Cancellation
from services.errors import RequestCancelledError

T = TypeVar("T")
P = ParamSpec("P")


async def _until_disconnect(receive: Receive, cancel: Cancellation) -> None:
    """Wait for the client to go away, then cancel. The body was read already, so the ASGI
    server's next message is the disconnect (a last empty body message may come first)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    cancel.cancel()


async def run_unless_disconnected(
    receive: Receive,
    cancel: Cancellation,
    work: Callable[P, T],
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``work`` in the thread pool, cancelled through ``cancel`` if the client disconnects
    first; a cancelled ``work`` raises ``RequestCancelledError`` (status 499, audited as
    ``cancelled``). ``work`` must be given ``cancel`` itself: a thread cannot be stopped from
    outside."""
    watcher = asyncio.ensure_future(_until_disconnect(receive, cancel))
    try:
        return await run_in_threadpool(work, *args, **kwargs)
    finally:
        watcher.cancel()


def mark_cancelled(audit: AuditContext) -> None:
    audit.decision, audit.reason = "cancelled", RequestCancelledError.code


def on_disconnect(cancel: Cancellation) -> Callable[[Message], Any]:
    """For ``EventSourceResponse(client_close_handler_callable=...)``: it watches for the
    disconnect of a streamed answer and calls this before it stops sending."""

    async def _cancel(_: Message) -> None:
        cancel.cancel()

    return _cancel


async def events_until_disconnected(
    events: Iterator[T], cancel: Cancellation, audit: AuditContext, *, close: Callable[[], None]
) -> AsyncIterator[T]:
    """``events`` (read in the thread pool) as an async stream for the SSE response. If the
    response stops before the last event (the client went away, or a send failed), ``cancel``
    is set, ``close`` ends the answer's generator (which closes the model call) and the request
    is audited as ``cancelled``."""
    finished = False
    try:
        async for event in iterate_in_threadpool(events):
            yield event
        finished = True
    finally:
        if not finished:
            cancel.cancel()
            # the worker thread has returned (the pool finishes a call before the cancellation
            # lands), so closing the generator here cannot race with it
            close()
            mark_cancelled(audit)


def cancellable_event_stream(
    events: Iterator[Any], cancel: Cancellation, audit: AuditContext, *, close: Callable[[], None]
) -> EventSourceResponse:
    """The SSE response of a streamed answer: a client that leaves cancels the model call
    (through ``on_disconnect`` and ``events_until_disconnected``)."""
    return EventSourceResponse(
        events_until_disconnected(events, cancel, audit, close=close),
        sep="\n",
        client_close_handler_callable=on_disconnect(cancel),
    )
