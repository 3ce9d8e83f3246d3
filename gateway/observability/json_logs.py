"""JSON-lines logging: one object a line with trace and span ids, the request id, the principal.

Exceptions are logged by type and frames only: an exception's message may quote user text (a
vendor error echoing its input), so it never reaches the log. Libraries that log prompts or
bodies at INFO are held at WARNING.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from gateway.observability.request_context import current_request
from gateway.settings import LoggingSettings

QUIET = ("LiteLLM", "litellm", "httpx", "httpcore", "presidio-analyzer", "weaviate", "urllib3")
UVICORN = ("uvicorn", "uvicorn.error")
# uvicorn's access line carries the raw path, and a path carries caller text (a document id, a
# job id that is a pasted secret); the audit log records every request by its route template.
ACCESS = "uvicorn.access"
OWN = ("holdfast", "gateway", "ingestion", "services", "uvicorn")


class LibraryDetailFilter(logging.Filter):
    """Below WARNING, only Holdfast's own loggers pass: libraries log their inputs at DEBUG and
    INFO (Presidio logs the words around a match, LiteLLM the prompt), whatever level is set."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return any(record.name == own or record.name.startswith(own + ".") for own in OWN)


def frames(exc_info: Any) -> list[str]:
    """``file:line in function`` per frame, innermost last; no locals, no message."""
    _, _, tb = exc_info
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(tb)]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        info = current_request.get()
        if info is not None:
            entry["request_id"] = info.request_id
            if info.principal:
                entry["principal"] = info.principal
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["exc_frames"] = frames(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: LoggingSettings, stream: IO[str] | None = None) -> None:
    """Root handler on stderr (or ``stream``) in the chosen format; uvicorn's loggers go
    through it too."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(LibraryDetailFilter())
    if settings.format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in UVICORN:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    access = logging.getLogger(ACCESS)
    access.handlers.clear()
    access.propagate = False
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
