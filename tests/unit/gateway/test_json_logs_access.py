"""The gateway's logs never carry a raw request path: uvicorn's access line stays off even after
the gateway configures logging (it re-routes uvicorn's other loggers through its handler)."""

from __future__ import annotations

import io
import logging

import pytest

from gateway.observability.json_logs import configure_logging
from gateway.settings import LoggingSettings

pytestmark = pytest.mark.unit


def test_access_lines_are_dropped_and_other_uvicorn_lines_kept() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(), stream)
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:1",
            "DELETE",
            "/v1/documents/684-66-2129",
            "1.1",
            404,
        )
        logging.getLogger("uvicorn.error").warning("worker restarted")
        text = stream.getvalue()
        assert "684-66-2129" not in text
        assert "worker restarted" in text
    finally:
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
