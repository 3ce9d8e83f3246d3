"""OpenTelemetry spans of the ingestion stages (API only: the gateway wires the SDK).

Span attributes are counts and ids only, never document text or entity values.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace import Tracer

TRACER_NAME = "holdfast.ingestion"
STAGES = ("parse", "chunk", "redact", "embed", "index")


def ingestion_tracer(tracer: Tracer | None = None) -> Tracer:
    """``tracer`` when given (tests), else the globally configured provider's tracer."""
    return tracer if tracer is not None else trace.get_tracer(TRACER_NAME)


def entity_attributes(counts: Mapping[str, int]) -> dict[str, int]:
    """Entity counts by type as span attributes (``redaction.entities.PERSON`` = 3)."""
    return {f"redaction.entities.{kind}": int(n) for kind, n in sorted(counts.items())}
