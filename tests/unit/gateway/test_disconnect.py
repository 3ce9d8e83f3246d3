"""The edge's side of cancellation: a disconnect sets the token a worker thread checks, and a
streamed answer that stops early closes its generator and is audited as cancelled."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from starlette.types import Message

from gateway.api.audit_middleware import AuditContext
from gateway.api.disconnect import events_until_disconnected, run_unless_disconnected
from services.cancellation import Cancellation
from services.errors import RequestCancelledError

pytestmark = pytest.mark.unit


def _receive(disconnect: asyncio.Event):  # type: ignore[no-untyped-def]
    async def receive() -> Message:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    return receive


def _work_until_cancelled(cancel: Cancellation, started: threading.Event) -> str:
    started.set()
    for _ in range(500):  # a model call checking the token between pieces
        cancel.check("the answer")
        threading.Event().wait(0.01)
    return "finished"


def test_a_disconnect_cancels_the_work_in_the_thread_pool() -> None:
    async def scenario() -> None:
        disconnect, started, cancel = asyncio.Event(), threading.Event(), Cancellation()
        task = asyncio.ensure_future(
            run_unless_disconnected(
                _receive(disconnect), cancel, _work_until_cancelled, cancel, started
            )
        )
        while not started.is_set():
            await asyncio.sleep(0.01)
        disconnect.set()
        with pytest.raises(RequestCancelledError):
            await asyncio.wait_for(task, timeout=2)
        assert cancel.cancelled

    asyncio.run(scenario())


def test_work_that_ends_first_returns_and_leaves_the_token_alone() -> None:
    async def scenario() -> None:
        cancel = Cancellation()
        result = await run_unless_disconnected(_receive(asyncio.Event()), cancel, lambda: "answer")
        assert result == "answer" and not cancel.cancelled

    asyncio.run(scenario())


def test_a_stream_stopped_early_closes_its_generator_and_is_audited_cancelled() -> None:
    closed: list[bool] = []

    def events() -> Iterator[int]:
        try:
            yield from range(10)
        finally:
            closed.append(True)

    async def scenario() -> None:
        cancel, audit, gen = Cancellation(), AuditContext(), events()
        stream = events_until_disconnected(gen, cancel, audit, close=gen.close)
        assert [await stream.__anext__(), await stream.__anext__()] == [0, 1]
        await stream.aclose()  # what the SSE response does when its client goes away
        assert cancel.cancelled and closed == [True]
        assert (audit.decision, audit.reason) == ("cancelled", "client_disconnected")

    asyncio.run(scenario())


def test_a_stream_read_to_the_end_is_not_cancelled() -> None:
    async def scenario() -> None:
        cancel, audit = Cancellation(), AuditContext()
        gen = iter(range(3))
        got = [e async for e in events_until_disconnected(gen, cancel, audit, close=lambda: None)]
        assert got == [0, 1, 2] and not cancel.cancelled and audit.decision is None

    asyncio.run(scenario())
