"""A cancellation token: how the HTTP edge tells a model call in a worker thread to stop.

A blocking call cannot be interrupted from outside its thread, and a model server keeps
generating (and keeps its slot) for as long as the HTTP connection to it stays open. So the
edge sets the token when its client goes away, and the call that holds the connection checks
the token between the pieces it receives and closes that connection itself.
"""

from __future__ import annotations

import threading

from services.errors import RequestCancelledError


class Cancellation:
    """Set once, from any thread; read by the long call it was passed to. Never reset."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self, what: str) -> None:
        """Raise ``RequestCancelledError`` (naming ``what`` was stopped) once cancelled."""
        if self._event.is_set():
            raise RequestCancelledError(f"{what} stopped: the client went away")
