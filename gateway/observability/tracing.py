"""OpenTelemetry traces: the provider from settings, FastAPI and httpx instrumentation.

W3C trace context (the API's default propagator) is read from incoming requests by the FastAPI
instrumentation and written into every outgoing httpx call (Ollama, TEI, remote embedders,
Weaviate's REST side). Spans carry counts, ids, scores and model names, never question, answer
or document text (see ``span_attributes``).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Tracer

from gateway.settings import TelemetrySettings

log = logging.getLogger("holdfast.telemetry")
TRACER_NAME = "holdfast.gateway"
EXCLUDED_URLS = "healthz,readyz,metrics"
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
