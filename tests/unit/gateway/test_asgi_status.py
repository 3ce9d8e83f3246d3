"""capture_status: the status a response went out with, 500 when none started."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from gateway.observability.asgi import capture_status

pytestmark = pytest.mark.unit


def test_the_status_is_noted_and_every_message_passes_through() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    wrapped, status = capture_status(send)
    assert status.code == 500
    messages: list[Message] = [
        {"type": "http.response.start", "status": 404, "headers": []},
        {"type": "http.response.body", "body": b"gone"},
    ]

    async def respond() -> None:
        for message in messages:
            await wrapped(message)

    asyncio.run(respond())
    assert status.code == 404 and sent == messages
