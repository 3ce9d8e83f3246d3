"""OpenTelemetry traces: the provider from settings, FastAPI and httpx instrumentation.

W3C trace context (the API's default propagator) is read from incoming requests by the FastAPI
instrumentation and written into every outgoing httpx call (Ollama, TEI, remote embedders,
Weaviate's REST side). Spans carry counts, ids, scores and model names, never question, answer
or document text; ``span_safe`` is the one gate attribute values pass through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, Tracer

from gateway.settings import TelemetrySettings

log = logging.getLogger("holdfast.telemetry")
TRACER_NAME = "holdfast.gateway"
EXCLUDED_URLS = "healthz,readyz,metrics"
_ENTITY = re.compile(r"^[A-Z_]{1,40}$")
_installed_globally = False


def exporter_for(telemetry: TelemetrySettings) -> SpanExporter | None:
    if telemetry.exporter == "console":
        return ConsoleSpanExporter()
    if telemetry.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=telemetry.otlp_endpoint, timeout=int(max(1, telemetry.otlp_timeout_s))
        )
    return None


def build_tracer_provider(telemetry: TelemetrySettings) -> TracerProvider | None:
    """A provider exporting where the settings say; ``None`` when tracing is off."""
    exporter = exporter_for(telemetry)
    if exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: telemetry.service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install_globally(provider: TracerProvider) -> None:
    """Make ``provider`` the process's: code that uses the API directly (ingestion's stage
    spans, tracer "holdfast.ingestion") then exports through it. Once per process."""
    global _installed_globally
    if not _installed_globally:
        trace.set_tracer_provider(provider)
        _installed_globally = True


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """Server spans per request (route template names) and client spans per httpx call."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS)
    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument(tracer_provider=provider)


def tracer_of(provider: TracerProvider | None) -> Tracer:
    return provider.get_tracer(TRACER_NAME) if provider else trace.NoOpTracer()


# --- attribute helpers: only numbers, ids and fixed vocabularies ------------------------------


def set_counts(span: Span, prefix: str, counts: Mapping[str, int]) -> None:
    """``prefix.ENTITY = n`` for entity types that look like entity types."""
    for entity, n in counts.items():
        if _ENTITY.match(entity):
            span.set_attribute(f"{prefix}.{entity}", int(n))


def set_ids(span: Span, name: str, ids: Sequence[str]) -> None:
    span.set_attribute(name, [str(i) for i in ids][:50])


def set_scores(span: Span, name: str, scores: Sequence[float]) -> None:
    span.set_attribute(name, [round(float(s), 4) for s in scores][:50])
