"""OpenTelemetry traces: the provider from settings, FastAPI and httpx instrumentation.

W3C trace context (the API's default propagator) is read from incoming requests by the FastAPI
instrumentation and written into every outgoing httpx call (Ollama, TEI, remote embedders,
Weaviate's REST side). Spans carry counts, ids, scores and model names, never question, answer
or document text (see ``span_attributes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

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
from starlette.applications import Starlette
from starlette.routing import Match
from starlette.types import Scope

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


# Where the instrumentation writes the request's URL (old and stable semantic conventions). A
# path can carry what a caller typed (a document id, a job id: an SSN was sent as one), so these
# hold the route template instead (``/v1/jobs/{job_id}``), and no query string.
URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full", "url.query")


def route_template(app: Starlette, scope: Scope) -> str:
    """The template of the route ``scope`` matches, or "" when none does (a 404)."""
    for route in app.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", ""))
    return ""


def url_scrubber(app: Starlette) -> Callable[[Span, Scope], None]:
    """A server request hook that overwrites the URL attributes of the request's span."""

    def scrub(span: Span, scope: Scope) -> None:
        if not span.is_recording():
            return
        present = getattr(span, "attributes", None) or {}
        template = route_template(app, scope)
        for key in URL_ATTRIBUTES:
            if key in present:
                span.set_attribute(key, "" if key == "url.query" else template)

    return scrub


def instrument(app: FastAPI, provider: TracerProvider) -> None:
    """Server spans per request (route template names, URL attributes reduced to the template)
    and client spans per httpx call."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        server_request_hook=url_scrubber(app),
    )
    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument(tracer_provider=provider)


def tracer_of(provider: TracerProvider | None) -> Tracer:
    return provider.get_tracer(TRACER_NAME) if provider else trace.NoOpTracer()
