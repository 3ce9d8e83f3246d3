"""ASGI helpers the gateway's middlewares share."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Send


@dataclass(slots=True)
class ResponseStatus:
    """The status the app answered with; 500 until the response starts (an app that raises
    before answering is a server error)."""

    code: int = 500


def capture_status(send: Send) -> tuple[Send, ResponseStatus]:
    """Wrap ``send`` so that the response's status is noted as it goes out."""
    status = ResponseStatus()

    async def send_and_note(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.code = int(message["status"])
        await send(message)

    return send_and_note, status
