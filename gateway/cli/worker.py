"""``holdfast worker``: run ingest jobs in a process of their own, beside gateways that only
enqueue (``ingestion.run_in_gateway: false``)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import TYPE_CHECKING, Annotated

import typer

from gateway.cli.common import cli_settings, fail, out
from services.errors import BackendTimeoutError, HoldfastError, StoreUnavailableError

if TYPE_CHECKING:
    from gateway.components import Components
    from gateway.observability.metrics import GatewayMetrics
    from gateway.settings import Settings
    from ingestion.worker import IngestWorker

log = logging.getLogger("holdfast.ingest")


def worker_command(
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            max=32,
            help="Batches this process runs at once (one job each). Parsing is CPU-bound "
            "Python: for more throughput run more worker processes (replicas, hosts) rather "
            "than a high value here.",
        ),
    ] = 1,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Exit once no job is runnable (a batch run, a cron job, a test) instead of "
            "waiting for new uploads.",
        ),
    ] = False,
    poll: Annotated[
        float, typer.Option(min=0.1, help="Seconds between looks at an empty queue.")
    ] = 1.0,
    metrics_port: Annotated[
        int,
        typer.Option(
            min=0,
            max=65535,
            help="Serve Prometheus metrics at http://HOST:PORT/metrics: files ingested by "
            "outcome, chunks written, PII redacted while ingesting, and the shared queue's jobs "
            "by state. 0: no metrics.",
        ),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option(help="Address the metrics port listens on (0.0.0.0 in a pod).")
    ] = "127.0.0.1",
) -> None:
    """Run ingestion jobs from the shared job store, in this process.

    Gateways enqueue uploads; workers parse, redact, embed and index them. Each worker claims
    one batch of a job at a time under a lease (ingestion.lease_s) that a heartbeat renews
    while the batch runs: a worker that dies is replaced by another once its lease runs out,
    and the batch is redone without duplicating chunks. A batch that keeps failing is given
    up after ingestion.max_attempts tries, its files marked failed with the reason. Jobs of
    different principals take turns batch by batch, so a big upload never holds up a small one.

    With database.url (PostgreSQL) run as many workers as you like on any host; with SQLite,
    on the gateway's host. Set ingestion.run_in_gateway: false on the gateways when workers run
    the jobs. SIGTERM or Ctrl-C: the batches in hand finish, their leases are released, exit 0.
    --metrics-port serves the worker's own Prometheus metrics (gateways serve theirs at /metrics).
    """
    from gateway.observability.json_logs import configure_logging

    settings = cli_settings()
    configure_logging(settings.logging)
    stop = threading.Event()  # from the start: a SIGTERM while models load is a clean exit too
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    metrics = _serve_metrics(metrics_host, metrics_port) if metrics_port else None  # fails fast
    components = _start(settings, stop)
    try:
        if stop.is_set():
            return
        workers = _workers(components, concurrency, poll, metrics)
        served = f", metrics at http://{metrics_host}:{metrics_port}/metrics" if metrics else ""
        out.print(
            f"holdfast worker: {concurrency} loop(s) "
            f"({', '.join(w.worker_id for w in workers)}), lease {settings.ingestion.lease_s:g} s, "
            f"{settings.ingestion.max_attempts} attempts{served}",
            highlight=False,
        )
        if once:
            _drain(workers, stop)
        else:
            _serve(workers, stop, lease_s=settings.ingestion.lease_s)
    finally:
        components.close()


def _start(settings: Settings, stop: threading.Event) -> Components:
    """The components, waiting up to weaviate.startup_timeout_s for a store that is not up
    yet: workers often start beside a Weaviate that is still starting (a pod, a unit, a test),
    and exiting there would only make the supervisor restart them."""
    from gateway.container import build_components

    deadline = time.monotonic() + settings.weaviate.startup_timeout_s
    while True:
        try:
            components = build_components(settings)
            components.warm_up(wait_for_store=True)
            return components
        except (StoreUnavailableError, BackendTimeoutError) as exc:
            if stop.is_set() or time.monotonic() >= deadline:
                fail(f"{exc} (waited for it {settings.weaviate.startup_timeout_s:g} s)")
            out.print(f"waiting for the store: {exc}", highlight=False)
            stop.wait(2.0)
        except HoldfastError as exc:
            fail(str(exc))


def _workers(
    components: Components, concurrency: int, poll_s: float, metrics: GatewayMetrics | None
) -> list[IngestWorker]:
    from gateway.ingest_jobs import build_ingest_service
    from gateway.observability.metrics import JobQueueCollector

    service = build_ingest_service(components, metrics)
    if metrics is not None:
        metrics.registry.register(JobQueueCollector(service.jobs.counts_by_status))
    assert service.new_worker is not None
    made = [service.worker, *(service.new_worker() for _ in range(concurrency - 1))]
    for worker in made:
        worker.poll_s = poll_s
    return made


def _serve_metrics(host: str, port: int) -> GatewayMetrics:
    """A metrics registry served on ``host:port`` by prometheus_client's own server (a daemon
    thread), bound before the models load so a taken port fails at once."""
    from prometheus_client import start_http_server

    from gateway.observability.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    try:
        start_http_server(port, addr=host, registry=metrics.registry)
        return metrics
    except OSError as exc:
        fail(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
            "pick another --metrics-port"
        )


def _drain(workers: list[IngestWorker], stop: threading.Event) -> None:
    """Every loop runs batches until none is runnable (or a signal asks to stop)."""

    def drain(worker: IngestWorker) -> None:
        while not stop.is_set() and worker.run_once() is not None:
            pass

    threads = [threading.Thread(target=drain, args=(w,), name="ingest-drain") for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _serve(workers: list[IngestWorker], stop: threading.Event, *, lease_s: float) -> None:
    """Run the loops until ``stop`` (SIGTERM/SIGINT), then let the batches in hand finish."""
    for worker in workers:
        worker.start()
    while not stop.wait(1.0):
        pass
    log.info("holdfast worker: stopping after the batches in hand")
    deadline = time.monotonic() + lease_s
    for worker in workers:
        worker.stop(timeout_s=max(1.0, deadline - time.monotonic()))
