"""What the gateway costs next to the engines it guards, measured in one run on a running stack.

    source the stack's environment (HOLDFAST_HOME and ports), then
    .venv/bin/python -m benchmarks.gateway_overhead --group docs [--levels 1,8,32]
        [--requests 600] [--profile] [--stream 20] [--soak-minutes 10]

* **Search.** Per question, the raw path (this process: the gateway's own embedder, then the
  same Weaviate hybrid query with the same access filter, candidates, alpha and fusion, through
  weaviate-client) and ``POST /v1/search`` through the gateway, interleaved in blocks that
  alternate which path goes first, at each concurrency level. Each path keeps what a long-lived
  client keeps for the whole level (the raw path its threads and gRPC channel, the gateway path
  its keep-alive connections, opened before timing), and one untimed block per path warms
  both. A block is at least four requests per worker, so that a level reaches its concurrency.
  p50/p95/p99, throughput, error rate and the gateway/raw ratios.
* **The HTTP floor** (unless ``--no-floor``): a third path in the same blocks, the raw path's
  two calls behind a bare ASGI app on uvicorn (``benchmarks/http_floor.py``, a child process of
  this one). Its ratios against the raw path are what crossing HTTP costs on this machine, for
  any service; the gateway's ratios against it are what the gateway's own work costs.
* **Streaming.** ``POST /v1/query`` with ``stream: true``: time to the ``retrieval`` event and to
  the first token, against the same steps done here (retrieval in-process, then the same
  messages streamed straight from the model server). The gateway's share of time to first
  token is what remains after the in-process retrieval and the model server's own first token.
  A nonce after the system prompt keeps the model server's prompt cache from favouring either.
* **CPU per request.** Each block reads the CPU time (user + system, from /proc) of the
  gateway, Weaviate and this process, each with its live child processes (the raw path's
  embedder and weaviate-client, or the gateway path's HTTP client; uvicorn's workers when the
  gateway runs several), so the report shows where each path's work runs. On a machine
  whose cores all three share, throughput is bounded by the sum.
* **Profile** (``--profile``): py-spy samples the gateway process during the concurrency-8
  search block; the flame graph is written next to the report.
* **Soak** (``--soak-minutes``): mixed load at concurrency 8 (searches, streamed answers, small
  uploads), the gateway's RSS sampled every 5 s; growth is measured from the end of a warm-up.

Writes benchmarks/reports/gateway-overhead-<UTC time>.{md,json}. A report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from benchmarks.load import machine, percentiles
from gateway.local.processes import ProcessSpec, ProcessSupervisor, StartupError

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

REPORTS = Path(__file__).resolve().parent / "reports"
QUESTIONS = Path(__file__).resolve().parents[1] / "evals" / "python_docs" / "questions.jsonl"


class RateLimitedBenchmarkError(RuntimeError):
    """The gateway answered 429: its per-key limit, not its speed, would be measured."""


@dataclass
class PathRun:
    """One path (raw or gateway) at one concurrency: every latency, errors, busy seconds, and the
    CPU seconds each measured process spent meanwhile."""

    latency_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    machine_ticks: tuple[int, int] = (0, 0)  # the machine's busy and total CPU ticks meanwhile

    def summary(self) -> dict[str, Any]:
        n = len(self.latency_ms) + self.errors
        return {
            "requests": n,
            "error_rate": round(self.errors / n, 4) if n else 0.0,
            "throughput_rps": round(len(self.latency_ms) / self.seconds, 2) if self.seconds else 0,
            "latency_ms": percentiles(self.latency_ms),
            "cpu_ms_per_request": {
                name: round(seconds * 1000 / n, 2) if n else 0.0
                for name, seconds in self.cpu_s.items()
            },
            "machine_busy": (
                round(self.machine_ticks[0] / self.machine_ticks[1], 3)
                if self.machine_ticks[1]
                else None
            ),
        }


def process_tree(pid: int, apart: frozenset[int] = frozenset()) -> list[int]:
    """``pid`` and its live descendants (uvicorn's worker processes, a process pool), from
    /proc/<pid>/task/<tid>/children; a descendant in ``apart`` (measured on its own, as the
    HTTP floor server this process starts) is left out with its own descendants."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        if current in apart and current != pid:
            continue
        tree.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending.extend(int(child) for child in children.read_text().split())
            except OSError:
                continue  # a thread or process that ended meanwhile
    return tree


def stat_cpu_seconds(stat: Path) -> float:
    """User + system CPU seconds from a /proc ``stat`` file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, from /proc/<pid>/stat."""
    return stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


def machine_ticks(stat: Path = Path("/proc/stat")) -> tuple[int, int]:
    """All cores' busy and total CPU ticks so far (busy: all but idle and I/O wait), from the
    first line of /proc/stat: whether a path left cores idle, or every process together was
    short of CPU."""
    ticks = [int(t) for t in stat.read_text().split("\n", 1)[0].split()[1:]]
    total = sum(ticks[:8])  # user .. steal (guest time is counted in user already)
    return total - ticks[3] - ticks[4], total


@dataclass(frozen=True)
class CpuMeter:
    """CPU seconds (user + system) of named processes and their descendants, from /proc, so a
    gateway run with several uvicorn workers is charged for all of them."""

    pids: dict[str, int]

    def read(self) -> dict[str, float]:
        out = {}
        apart = frozenset(self.pids.values())
        for name, pid in self.pids.items():
            if not Path(f"/proc/{pid}").exists():
                continue  # a process that is gone (or external) is left out, not guessed
            total = 0.0
            for member in process_tree(pid, apart):
                try:
                    total += cpu_seconds(member)
                except OSError:
                    continue  # a child that ended between listing and reading
            out[name] = total
        return out

    def charge(self, run: PathRun, step: Callable[[], None]) -> None:
        """Run ``step`` and add each process's CPU time meanwhile to ``run``."""
        before, ticks_before = self.read(), machine_ticks()
        step()
        after, ticks_after = self.read(), machine_ticks()
        for name, seconds in after.items():
            if name in before:
                run.cpu_s[name] = run.cpu_s.get(name, 0.0) + seconds - before[name]
        busy, total = run.machine_ticks
        run.machine_ticks = (
            busy + ticks_after[0] - ticks_before[0],
            total + ticks_after[1] - ticks_before[1],
        )


# The Python thread names of the gateway's threads, and what each kind does. Threads without a
# Python name are ONNX Runtime's and gRPC's own.
THREAD_ROLES = (
    ("MainThread", "event loop"),
    ("AnyIO worker thread", "request threads"),
    ("presidio", "PII pool"),
    ("audit-writer", "audit writer"),
    ("ingest-worker", "ingest worker"),
)
NATIVE_THREADS = "native (ONNX Runtime, gRPC)"


def python_thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name of ``pid``'s threads, from ``py-spy dump`` (empty
    when py-spy is missing or cannot attach: the report then leaves the breakdown out)."""
    try:
        dump = subprocess.run(
            [str(Path(sys.executable).parent / "py-spy"), "dump", "--pid", str(pid)],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r'^Thread (\d+) \(\w+\): "(.*)"$', dump, re.MULTILINE)
    }


def thread_role(name: str | None) -> str:
    if name is None:
        return NATIVE_THREADS
    return next((role for prefix, role in THREAD_ROLES if name.startswith(prefix)), "other Python")


@dataclass
class ThreadMeter:
    """CPU seconds of one process's threads, from /proc/<pid>/task, summed by role: where in
    the gateway a search's CPU goes (the event loop, the request threads, the PII pool...)."""

    pid: int
    names: dict[int, str] = field(default_factory=dict)
    cpu_s: dict[int, float] = field(default_factory=dict)

    def name_threads(self) -> None:
        """Learn the threads' names (again: request threads start as load grows)."""
        self.names.update(python_thread_names(self.pid))

    def read(self) -> dict[int, float]:
        out = {}
        for stat in Path(f"/proc/{self.pid}/task").glob("*/stat"):
            try:
                out[int(stat.parent.name)] = stat_cpu_seconds(stat)
            except OSError:
                continue  # a thread that ended meanwhile
        return out

    def charge(self, step: Callable[[], None]) -> None:
        before = self.read()
        step()
        for tid, seconds in self.read().items():
            self.cpu_s[tid] = self.cpu_s.get(tid, 0.0) + seconds - before.get(tid, 0.0)

    def ms_per_request(self, requests: int) -> dict[str, float]:
        """CPU milliseconds a request by role (empty without thread names)."""
        if not self.names or not requests:
            return {}
        roles: dict[str, float] = {}
        for tid, seconds in self.cpu_s.items():
            role = thread_role(self.names.get(tid))
            roles[role] = roles.get(role, 0.0) + seconds
        return {role: round(s * 1000 / requests, 2) for role, s in roles.items()}


def stack_pids(supervisor: ProcessSupervisor) -> dict[str, int]:
    """This process, and the gateway and Weaviate that ``holdfast up`` runs (as its supervisor
    records them; one that is not running, or runs elsewhere, is left out)."""
    pids = {"client": os.getpid()}
    for name in ("gateway", "weaviate"):
        state = supervisor.state(name)
        if state.running and state.pid:
            pids[name] = state.pid
    return pids


def load_questions(limit: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    return [r["question"] for r in rows][:limit]


class RawSearch:
    """The two calls a search makes, without the gateway: embed, then the hybrid query.

    ``joined``: questions embedded at the same time share model runs, as in the gateway (an
    application calling the model itself would need to build that); otherwise each question
    has its own run, as a direct call does."""

    def __init__(self, components: Any, group: str, *, joined: bool = False) -> None:
        from weaviate.classes.query import Filter, MetadataQuery

        from gateway.api.routes.query import RetrievalParams, options_for
        from services.weaviate_store import BM25_PROPERTIES, HIT_PROPERTIES

        settings = components.settings
        embedder = components.registry.current().embedder
        alone = getattr(embedder, "embed_queries", None)
        if joined or alone is None:
            self._embed: Callable[[str], list[float]] = embedder.embed_query
        else:
            self._embed = lambda question: alone([question])[0]
        self._options = options_for(components, RetrievalParams(), "q")
        self._client = weaviate_client(settings)
        self._collection = self._client.collections.use(settings.weaviate.collection)
        self._filter = Filter.by_property("access_groups").contains_any([group])
        self._properties = list(BM25_PROPERTIES)
        self._fusion = components.store.fusion  # the gateway's configured fusion
        self._metadata = MetadataQuery(score=True)
        self._returned = list(HIT_PROPERTIES)  # the properties the gateway asks for

    def __call__(self, question: str) -> int:
        return len(self._query(question).objects)

    def hits(self, question: str) -> list[dict[str, Any]]:
        """The hits' properties and fused scores (what ``benchmarks.http_floor`` returns)."""
        return [{**o.properties, "score": o.metadata.score} for o in self._query(question).objects]

    def _query(self, question: str) -> Any:
        vector = self._embed(question)
        return self._collection.query.hybrid(
            query=question,
            vector=list(vector),
            alpha=self._options.alpha,
            limit=self._options.candidates,
            query_properties=self._properties,
            fusion_type=self._fusion,
            filters=self._filter,
            return_metadata=self._metadata,
            return_properties=self._returned,
        )

    def close(self) -> None:
        self._client.close()


def weaviate_client(settings: Any) -> Any:
    """A weaviate-client of its own on the stack's Weaviate, connected as the gateway's store is
    (same address, API key and timeouts)."""
    from gateway.container import weaviate_connection
    from services.weaviate_common import WeaviateClient

    return WeaviateClient(weaviate_connection(settings)).live


def replicate(settings: Any, group: str, min_chunks: int) -> dict[str, int]:
    """Grow the index to ``min_chunks`` with copies of ``group``'s chunks (same text and
    vectors) under other groups (``<group>-copy-<n>``), as a shared multi-team index is: the
    access filter of every measured query then excludes most of the index."""
    from weaviate.classes.data import DataObject
    from weaviate.util import generate_uuid5

    from services.weaviate_common import stored_vector

    with weaviate_client(settings) as client:
        collection = client.collections.use(settings.weaviate.collection)
        total = int(collection.aggregate.over_all(total_count=True).total_count or 0)
        originals = [
            (dict(o.properties), stored_vector(o))
            for o in collection.iterator(include_vector=True)
            if group in (o.properties.get("access_groups") or [])
        ]
        copy = 0
        while total < min_chunks and originals:
            copy += 1
            tag = f"{group}-copy-{copy}"
            objects = []
            for props, vector in originals:
                props = {**props, "access_groups": [tag]}
                for name in ("chunk_id", "doc_id", "parent_id"):
                    if props.get(name):
                        props[name] = f"{props[name]}~{tag}"
                objects.append(
                    DataObject(
                        properties=props, uuid=generate_uuid5(props["chunk_id"]), vector=vector
                    )
                )
            for start in range(0, len(objects), 500):
                collection.data.insert_many(objects[start : start + 500])
            total = int(collection.aggregate.over_all(total_count=True).total_count or 0)
            print(f"  copy {copy}: the index holds {total} chunks", flush=True)
    return {"readable_by_group": len(originals), "total": total}


def floor_spec(group: str, port: int, *, joined: bool, wait_s: float = 180.0) -> ProcessSpec:
    """``benchmarks.http_floor`` on ``port``, healthy once its model is loaded."""
    argv = [sys.executable, "-m", "benchmarks.http_floor", "--group", group, "--port", str(port)]
    if joined:
        argv.append("--joined")
    return ProcessSpec(
        name="http-floor",
        argv=argv,
        health_url=f"http://127.0.0.1:{port}/healthz",
        env=dict(os.environ),
        cwd=Path(__file__).resolve().parents[1],
        startup_timeout_s=wait_s,
        hint=f"is port {port} taken? Pick another with --floor-port, "
        "or leave the floor out with --no-floor",
    )


@contextlib.contextmanager
def supervised(supervisor: ProcessSupervisor, spec: ProcessSpec) -> Iterator[int]:
    """The process of ``spec``, healthy inside the block (its PID), and stopped when the block
    ends, or when it does not come up, however that ends."""
    try:
        pid = supervisor.start(spec).pid
        assert pid is not None
        yield pid
    finally:
        supervisor.stop(spec.name)


def run_raw(raw: RawSearch, questions: list[str], pool: ThreadPoolExecutor, run: PathRun) -> None:
    """The raw path for ``questions`` on ``pool``: its threads are the concurrency, and it lives
    for the whole level, as the gateway path's connections do."""

    def once(question: str) -> None:
        start = time.perf_counter()
        try:
            raw(question)
        except Exception:  # counted, not fatal: a report of errors is a result too
            run.errors += 1
            return
        run.latency_ms.append((time.perf_counter() - start) * 1000)

    start = time.perf_counter()
    list(pool.map(once, questions))
    run.seconds += time.perf_counter() - start


async def open_session(url: str, key: str, concurrency: int) -> aiohttp.ClientSession:
    """A keep-alive session with ``concurrency`` connections already open: no timed request
    pays for a TCP connect, as no raw request does (weaviate-client's channel stays open).

    The client is aiohttp (C parser): it shares the gateway's cores here, and httpx cost 2.3 ms
    of CPU a request against aiohttp's well under one, CPU the gateway path was charged for."""
    session = aiohttp.ClientSession(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=aiohttp.ClientTimeout(total=60),
        connector=aiohttp.TCPConnector(limit=concurrency, keepalive_timeout=60),
    )

    async def warm() -> None:
        async with session.get("/healthz") as response:
            await response.read()

    await asyncio.gather(*(warm() for _ in range(concurrency)))
    return session


async def _gateway_block(
    session: aiohttp.ClientSession, questions: list[str], concurrency: int, run: PathRun
) -> None:
    """``POST /v1/search`` for each question, from ``concurrency`` workers on ``session``."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for q in questions:
        queue.put_nowait(q)

    async def worker() -> None:
        while not queue.empty():
            question = queue.get_nowait()
            start = time.perf_counter()
            try:
                async with session.post("/v1/search", json={"query": question}) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                run.errors += 1
                continue
            if status == 200:
                run.latency_ms.append((time.perf_counter() - start) * 1000)
            elif status == 429:
                raise RateLimitedBenchmarkError(
                    "the gateway rate-limits the benchmark's key (HTTP 429): start the stack "
                    "with HOLDFAST_LIMITS__RATE_PER_MINUTE=1000000 HOLDFAST_LIMITS__BURST=100000"
                )
            else:
                run.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds += time.perf_counter() - start


def gateway_counters(url: str, admin_key: str) -> dict[str, float] | None:
    """The gateway's counters on /metrics now (None if it did not answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10
    )
    if response.status_code != 200:
        return None
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _pair(counters: dict[str, float] | None, first: str, second: str) -> tuple[float, float] | None:
    if counters is None or first not in counters or second not in counters:
        return None
    return counters[first], counters[second]


def embedding_runs(counters: dict[str, float] | None) -> tuple[float, float] | None:
    """The gateway's in-process query-embedding runs and questions so far."""
    return _pair(counters, "holdfast_query_embedding_runs_total", "holdfast_query_embeddings_total")


def hit_vectors(counters: dict[str, float] | None) -> tuple[float, float] | None:
    """Hits the gateway scored with a kept vector, and hits whose vector it fetched, so far."""
    return _pair(counters, "holdfast_hit_vectors_kept_total", "holdfast_hit_vectors_fetched_total")


def mean_run_size(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """Questions per model run between two readings (None if a reading is missing or the
    embedder was reloaded in between)."""
    if before is None or after is None or after[0] <= before[0] or after[1] < before[1]:
        return None
    return round((after[1] - before[1]) / (after[0] - before[0]), 2)


def kept_share(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """The share of hits scored with a kept vector between two readings (None if a reading is
    missing, no hit came in between, or the gateway restarted)."""
    if before is None or after is None:
        return None
    kept, fetched = after[0] - before[0], after[1] - before[1]
    if kept < 0 or fetched < 0 or kept + fetched == 0:
        return None
    return round(kept / (kept + fetched), 3)


BLOCK_ROUNDS = 4  # a block keeps every worker busy for this many requests, at least


def level_blocks(
    questions: list[str], requests: int, block: int, concurrency: int
) -> list[list[str]]:
    """``requests`` questions (the list cycled) in blocks of ``block``, or of
    ``BLOCK_ROUNDS * concurrency`` when that is more: a block smaller than the concurrency
    would never reach it, and one of a few rounds spends much of its time filling and draining."""
    if not questions or requests < 1:
        return []
    size = max(block, BLOCK_ROUNDS * concurrency)
    cycled = [questions[i % len(questions)] for i in range(requests)]
    return [cycled[i : i + size] for i in range(0, len(cycled), size)]


def search_level(
    raw: RawSearch,
    url: str,
    key: str,
    blocks: list[list[str]],
    concurrency: int,
    meter: CpuMeter,
    on_gateway_block: Callable[[int], None] | None = None,
    counters: Callable[[], dict[str, float] | None] = lambda: None,
    threads: ThreadMeter | None = None,
    floor_url: str | None = None,
) -> dict[str, Any]:
    """Alternate raw and gateway blocks (and HTTP floor blocks, given ``floor_url``); the order
    turns every block. Before the timed blocks, one untimed block per path warms each (threads,
    connections, caches). ``counters`` reads the gateway's /metrics counters (its embedding
    runs and kept hit vectors: only its blocks move them); ``threads`` reads the gateway's CPU
    by thread during its blocks."""
    raw_run, gateway_run, floor_run = PathRun(), PathRun(), PathRun()
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(concurrency)
    session = loop.run_until_complete(open_session(url, key, concurrency))
    floor = None
    if floor_url:
        floor = loop.run_until_complete(open_session(floor_url, key, concurrency))
    try:

        def raw_block(chunk: list[str], run: PathRun) -> None:
            run_raw(raw, chunk, pool, run)

        def gateway_requests(chunk: list[str], run: PathRun) -> None:
            loop.run_until_complete(_gateway_block(session, chunk, concurrency, run))

        def gateway_block(chunk: list[str], run: PathRun) -> None:
            if threads is None:
                gateway_requests(chunk, run)
            else:
                threads.charge(functools.partial(gateway_requests, chunk, run))

        def floor_block(chunk: list[str], run: PathRun) -> None:
            assert floor is not None
            loop.run_until_complete(_gateway_block(floor, chunk, concurrency, run))

        paths = [(raw_block, raw_run), (gateway_block, gateway_run)]
        if floor is not None:
            paths.append((floor_block, floor_run))
        if blocks:
            raw_block(blocks[0], PathRun())
            gateway_requests(blocks[0], PathRun())
            if floor is not None:
                floor_block(blocks[0], PathRun())
        if threads is not None:
            threads.name_threads()  # after the warm-up block started the request threads
        before = counters()
        for i, chunk in enumerate(blocks):
            for step, run in block_order(paths, i):
                meter.charge(run, functools.partial(step, chunk, run))
            if on_gateway_block:
                on_gateway_block(i)
        after = counters()
        if threads is not None:
            threads.name_threads()
    finally:
        loop.run_until_complete(session.close())
        if floor is not None:
            loop.run_until_complete(floor.close())
        loop.close()
        pool.shutdown()
    r, g = raw_run.summary(), gateway_run.summary()
    floor_ratios: dict[str, Any] = {}
    if floor is not None:
        f = floor_run.summary()
        floor_ratios = {
            "floor": f,
            "floor_ratio_p50": _ratio(f["latency_ms"]["p50"], r["latency_ms"]["p50"]),
            "floor_ratio_p99": _ratio(f["latency_ms"]["p99"], r["latency_ms"]["p99"]),
            "floor_throughput_ratio": _ratio(f["throughput_rps"], r["throughput_rps"]),
            "gateway_over_floor_p50": _ratio(g["latency_ms"]["p50"], f["latency_ms"]["p50"]),
            "gateway_over_floor_throughput": _ratio(g["throughput_rps"], f["throughput_rps"]),
        }
    return {
        "concurrency": concurrency,
        "block": len(blocks[0]) if blocks else 0,
        "raw": r,
        "gateway": g,
        **floor_ratios,
        "ratio_p50": _ratio(g["latency_ms"]["p50"], r["latency_ms"]["p50"]),
        "ratio_p99": _ratio(g["latency_ms"]["p99"], r["latency_ms"]["p99"]),
        "throughput_ratio": _ratio(g["throughput_rps"], r["throughput_rps"]),
        "gateway_questions_per_embedding_run": mean_run_size(
            embedding_runs(before), embedding_runs(after)
        ),
        "gateway_hit_vectors_kept": kept_share(hit_vectors(before), hit_vectors(after)),
        "gateway_cpu_ms_by_thread": threads.ms_per_request(g["requests"]) if threads else {},
    }


def block_order(paths: list[Any], block: int) -> list[Any]:
    """The paths in the order block number ``block`` runs them: turned by one each block, so
    each path goes first (and last) equally often."""
    turn = block % len(paths) if paths else 0
    return paths[turn:] + paths[:turn]


def measured_paths(level: dict[str, Any]) -> list[str]:
    """The paths a level measured, in report order."""
    return [p for p in ("raw", "floor", "gateway") if p in level]


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


class RawStream:
    """The streamed answer's steps without the gateway: retrieval here, then the same messages
    streamed straight from the model server's OpenAI-compatible endpoint."""

    def __init__(self, components: Any, group: str) -> None:
        from gateway.api.routes.query import RetrievalParams, options_for
        from gateway.query.records import Ports
        from gateway.query.stream_redaction import LONGEST_ENTITY
        from gateway.security.keys import Principal

        current = components.registry.current()
        self._settings = components.settings
        self._ports = Ports(components.store, current.embedder, current.router, None, None, None)
        self._options = options_for(components, RetrievalParams(), "q")
        self._principal = Principal("bench", (group,), frozenset({"query"}))
        self._model = components.settings.ollama.chat_model
        # what the streamed-answer redactor holds back before its first release (policy)
        window = max(components.settings.redaction.stream_window_chars, LONGEST_ENTITY)
        self._hold_chars = window + window // 2
        # long-lived, as the gateway's own connection to the model server is
        self._http = httpx.Client(base_url=self._settings.ollama.base_url, timeout=300)
        self._http.get("/api/version").raise_for_status()  # the keep-alive connection, untimed

    def close(self) -> None:
        self._http.close()

    def __call__(self, question: str) -> dict[str, float]:
        from collections import Counter

        from gateway.query.answering import retrieve_step
        from gateway.query.clock import StageClock
        from gateway.query.prompt import build_messages

        start = time.perf_counter()
        safe, retrieval = retrieve_step(
            question, self._principal, self._ports, self._options, Counter(), StageClock(None)
        )
        retrieved = time.perf_counter()
        if retrieval.status != "ok":
            return {"retrieval_ms": (retrieved - start) * 1000}
        messages = [
            {"role": m.role, "content": m.content} for m in build_messages(safe, retrieval.context)
        ]
        messages[-1]["content"] = f"[{uuid.uuid4().hex[:8]}] " + messages[-1]["content"]
        body = {
            "model": self._model,
            "messages": messages,
            "stream": True,
            "max_tokens": self._options.max_tokens or 256,
            "temperature": 0,
        }
        sent = time.perf_counter()
        first = held = None
        text = ""
        with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices") or [{}]
                piece = (choices[0].get("delta") or {}).get("content") or ""
                if piece and first is None:
                    first = time.perf_counter()
                text += piece
                if len(text) >= self._hold_chars:
                    held = time.perf_counter()
                    break
        end = time.perf_counter()
        return {
            "retrieval_ms": (retrieved - start) * 1000,
            "model_ttft_ms": ((first or end) - sent) * 1000,
            "model_hold_ms": ((held or end) - sent) * 1000,
        }


def gateway_stream(client: httpx.Client, key: str, question: str) -> dict[str, float]:
    """Client-side marks of one streamed answer, read to its ``done`` event, whose
    ``timings_ms`` say where the gateway spent the time before the first token. ``client`` is
    long-lived (its base URL the gateway's): a new httpx client per request builds an SSL
    context even for plain HTTP, about 21 ms here, which would be charged to the gateway."""
    start = time.perf_counter()
    marks: dict[str, float] = {}
    timings: dict[str, float] = {}
    with client.stream(
        "POST",
        "/v1/query",
        json={"question": question, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    ) as response:
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
                if event not in marks:
                    marks[event] = (time.perf_counter() - start) * 1000
            elif line.startswith("data: ") and event == "done":
                timings = json.loads(line[6:]).get("timings_ms") or {}
    row = {"retrieval_event_ms": marks.get("retrieval", 0.0), "ttft_ms": marks.get("token", 0.0)}
    if "model_first_piece" in timings and "hold_back" in timings:
        stages = sum(timings.get(k, 0.0) for k in RETRIEVAL_STAGES)
        row |= {
            "gw_retrieval_ms": stages,
            "gw_model_first_piece_ms": timings["model_first_piece"],
            "gw_hold_back_ms": timings["hold_back"],
            "gateway_own_ms": row["ttft_ms"]
            - stages
            - timings["model_first_piece"]
            - timings["hold_back"],
        }
    return row


#: The policy stages that are retrieval proper (not the gateway's own cost) in ``timings_ms``:
#: the search, the reranker, and the assembly (which fetches the hits' sections from the store).
RETRIEVAL_STAGES = ("retrieve", "rerank", "assemble")


def streaming(raw: RawStream, url: str, key: str, questions: list[str]) -> dict[str, Any]:
    """Per question, both paths (order alternating); the share is computed per question. Each
    path keeps one HTTP connection open for the whole run, opened before timing."""
    rows = []
    with httpx.Client(base_url=url, timeout=300) as client:
        client.get("/healthz").raise_for_status()  # the keep-alive connection, untimed
        for i, question in enumerate(questions):
            if i % 2:
                g, r = gateway_stream(client, key, question), raw(question)
            else:
                r, g = raw(question), gateway_stream(client, key, question)
            if "model_ttft_ms" not in r or "gateway_own_ms" not in g:
                continue  # refused on weak retrieval: no model call to compare with
            share = g["ttft_ms"] - r["retrieval_ms"] - r["model_ttft_ms"]
            beyond_hold = g["ttft_ms"] - r["retrieval_ms"] - r["model_hold_ms"]
            rows.append(
                {**g, **r, "gateway_share_ms": share, "gateway_share_beyond_hold_ms": beyond_hold}
            )
    columns = (
        "retrieval_event_ms",
        "ttft_ms",
        "retrieval_ms",
        "model_ttft_ms",
        "model_hold_ms",
        "gateway_share_ms",
        "gateway_share_beyond_hold_ms",
        "gw_retrieval_ms",
        "gw_model_first_piece_ms",
        "gw_hold_back_ms",
        "gateway_own_ms",
    )
    return {
        "answered": len(rows),
        "asked": len(questions),
        **{c: percentiles([row[c] for row in rows]) for c in columns},
    }


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def soak(
    url: str, key: str, ingest_key: str, pid: int, questions: list[str], minutes: float
) -> dict[str, Any]:
    """Mixed load at concurrency 8 for ``minutes``: RSS before, after a warm-up, at the end."""
    stop = time.monotonic() + minutes * 60
    warm_until = time.monotonic() + min(120.0, minutes * 60 / 5)
    counts = {"search": 0, "query": 0, "ingest": 0, "errors": 0}
    failed: dict[str, int] = {}
    samples: list[tuple[float, float]] = []
    idle = rss_mib(pid)
    began = time.monotonic()
    lock = threading.Lock()

    def sampler() -> None:
        while time.monotonic() < stop:
            samples.append((time.monotonic() - began, rss_mib(pid)))
            time.sleep(5)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            while time.monotonic() < stop:
                question = rng.choice(questions)
                roll = rng.random()
                kind = "search" if roll < 0.80 else "query" if roll < 0.95 else "ingest"
                try:
                    if kind == "search":
                        ok = client.post("/v1/search", json={"query": question}).status_code == 200
                    elif kind == "query":
                        ok = bool(gateway_stream(client, key, question)["retrieval_event_ms"])
                    else:
                        text = f"# Soak note {uuid.uuid4().hex}\n\n{question}\n"
                        reply = client.post(
                            "/v1/documents",
                            headers={"Authorization": f"Bearer {ingest_key}"},
                            files=[("files", ("soak.md", text.encode(), "text/markdown"))],
                            data={"access_groups": "soak"},
                        )
                        ok = reply.status_code == 202
                except httpx.HTTPError:
                    ok = False
                with lock:
                    counts[kind] += 1
                    counts["errors"] += not ok
                    if not ok:
                        failed[kind] = failed.get(kind, 0) + 1

    threads = [threading.Thread(target=sampler, daemon=True)]
    threads += [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    warm = [rss for t, rss in samples if t >= warm_until - began]
    after_warm, end = (warm[0], warm[-1]) if warm else (idle, idle)
    peak = max((rss for _, rss in samples), default=idle)
    return {
        "minutes": minutes,
        "requests": {k: v for k, v in counts.items() if k != "errors"},
        "errors": counts["errors"],
        "errors_by_kind": failed,
        "rss_mib": {
            "idle": round(idle, 1),
            "after_warm_up": round(after_warm, 1),
            "end": round(end, 1),
            "peak": round(peak, 1),
        },
        "growth_after_warm_up_pct": round((end - after_warm) / after_warm * 100, 2),
        "median_after_warm_up": round(statistics.median(warm), 1) if warm else None,
        # every 5 s: a plateau (allocator arenas reaching their peak shapes) and a leak look
        # alike in two numbers, not in the series
        "rss_series_mib": [[round(t, 1), round(rss, 1)] for t, rss in samples],
    }


def profile_gateway(pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy samples every thread of the gateway (native frames off, idle threads off)."""
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            "200",
            "--format",
            "flamegraph",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, help="the access group the index was loaded with")
    parser.add_argument("--levels", default="1,8,32", help="concurrency levels ('' for none)")
    parser.add_argument(
        "--questions", type=int, default=120, help="distinct questions (the eval set's first)"
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=600,
        help="timed searches per path and level (the questions cycled)",
    )
    parser.add_argument(
        "--block",
        type=int,
        default=40,
        help="questions per interleaved block (at least 4 x the concurrency)",
    )
    parser.add_argument("--stream", type=int, default=20, help="streamed answers to compare")
    parser.add_argument("--profile", action="store_true", help="py-spy flame graph at conc. 8")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="mixed-load soak")
    parser.add_argument(
        "--min-chunks", type=int, default=20000, help="grow the index to this size first"
    )
    parser.add_argument("--label", default="", help="what was measured, for the report")
    parser.add_argument(
        "--floor-port",
        type=int,
        default=8091,
        help="port of the HTTP floor server this benchmark starts (the raw path behind HTTP)",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="leave the HTTP floor path out of the search"
    )
    parser.add_argument(
        "--raw-embedding",
        choices=("per-call", "joined"),
        default="per-call",
        help="raw path: one model run per question (a direct call), or concurrent questions "
        "sharing runs as the gateway's embedder does",
    )
    args = parser.parse_args()

    from gateway.container import build_components
    from gateway.offline import enforce_offline_env
    from gateway.settings import Settings

    enforce_offline_env()
    settings = Settings()
    url = settings.gateway.base_url
    pids = stack_pids(ProcessSupervisor(settings.run_dir, settings.logs_dir))
    if "gateway" not in pids:
        sys.exit(f"gateway_overhead: no gateway running under {settings.home}: run holdfast up")
    pid = pids["gateway"]
    key = _query_key(settings, args.group)
    admin_key = settings.admin_key_file.read_text().strip()  # /metrics may need it
    index = replicate(settings, args.group, args.min_chunks)
    components = build_components(settings)
    components.warm_up()
    questions = load_questions(args.questions)
    joined = args.raw_embedding == "joined"
    raw = RawSearch(components, args.group, joined=joined)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "label": args.label,
        "machine": machine(),
        "index_chunks": index["total"],
        "readable_chunks": index["readable_by_group"],
        "raw_embedding": args.raw_embedding,
        "search": [],
    }
    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    with contextlib.ExitStack() as floor:
        floor_url = None
        if levels and not args.no_floor:
            print("starting the HTTP floor server …", flush=True)
            run_dir = Path(floor.enter_context(tempfile.TemporaryDirectory(prefix="hf-floor-")))
            spec = floor_spec(args.group, args.floor_port, joined=joined)
            supervisor = ProcessSupervisor(run_dir, settings.logs_dir)
            try:
                pids["floor"] = floor.enter_context(supervised(supervisor, spec))
            except StartupError as exc:
                sys.exit(
                    f"gateway_overhead: {exc} (its log: {supervisor.log_path(spec.name)}). "
                    f"{exc.hint}"
                )
            floor_url = f"http://127.0.0.1:{args.floor_port}"
        meter = CpuMeter(pids)
        for level in levels:
            print(f"search at concurrency {level} …", flush=True)
            hook = None
            if args.profile and level == 8:
                flame = REPORTS / f"gateway-overhead-{stamp}-search-c8.svg"
                spy: list[subprocess.Popen[bytes]] = []

                def hook(i: int, flame: Path = flame, spy: list[Any] = spy) -> None:
                    if i == 0:  # profile the blocks after the first pair (warm)
                        spy.append(profile_gateway(pid, 20, flame))

                report["flame_graph"] = flame.name
            try:
                measured = search_level(
                    raw,
                    url,
                    key,
                    level_blocks(questions, args.requests, args.block, level),
                    level,
                    meter,
                    on_gateway_block=hook,
                    counters=lambda: gateway_counters(url, admin_key),
                    threads=ThreadMeter(pid),
                    floor_url=floor_url,
                )
            except RateLimitedBenchmarkError as exc:
                sys.exit(f"gateway_overhead: {exc}")
            report["search"].append(measured)
            if args.profile and level == 8:
                for proc in spy:
                    proc.wait(timeout=120)
    raw.close()
    if args.stream:
        print(f"streamed answers ({args.stream}) …", flush=True)
        raw_stream = RawStream(components, args.group)
        report["streaming"] = streaming(raw_stream, url, key, questions[: args.stream])
        raw_stream.close()
    if args.soak_minutes:
        print(f"soak for {args.soak_minutes} min …", flush=True)
        report["soak"] = soak(url, key, admin_key, pid, questions, args.soak_minutes)
    components.close()
    REPORTS.mkdir(parents=True, exist_ok=True)
    stem = REPORTS / f"gateway-overhead-{stamp}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    markdown = to_markdown(report)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)


def _query_key(settings: Any, group: str) -> str:
    """A query key for ``group``, created through the CLI (the admin path operators use)."""
    result = subprocess.run(
        [
            str(Path(__file__).resolve().parents[1] / ".venv" / "bin" / "holdfast"),
            "keys",
            "create",
            f"bench-{uuid.uuid4().hex[:6]}",
            "--groups",
            group,
            "--roles",
            "query",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return next(w for w in result.stdout.split() if w.startswith("hf_"))


STREAM_MEASURES = {
    "retrieval_event_ms": "gateway: to the `retrieval` event",
    "ttft_ms": "gateway: to the first token event",
    "retrieval_ms": "raw: retrieval in-process",
    "model_ttft_ms": "raw: model server's first token",
    "model_hold_ms": "raw: model server's first redaction window (the policy's hold-back)",
    "gateway_share_ms": "gateway share: first token - raw retrieval - model first token",
    "gateway_share_beyond_hold_ms": "gateway share beyond the hold-back: first token - raw "
    "retrieval - model window",
    "gw_retrieval_ms": "gateway-reported: retrieval stages (retrieve, rerank, assemble)",
    "gw_model_first_piece_ms": "gateway-reported: model call to its first piece",
    "gw_hold_back_ms": "gateway-reported: first piece to first token sent (redaction window)",
    "gateway_own_ms": "**gateway's own share**: first token - retrieval stages - model first "
    "piece - hold-back (HTTP, auth, limit, question redaction, prompt, SSE)",
}


def cpu_table(levels: list[dict[str, Any]]) -> list[str]:
    """CPU milliseconds per request of each process, per path: where each path's work runs."""
    names = sorted(
        {
            n
            for lv in levels
            for p in measured_paths(lv)
            for n in lv[p].get("cpu_ms_per_request", {})
        }
    )
    if not names:
        return []
    lines = [
        "",
        "CPU ms per request (user + system; `client` is this process: the raw path's embedder "
        "and weaviate-client, or the HTTP client of the gateway and floor paths; `floor` is the "
        "HTTP floor's server), and how busy the machine's cores were meanwhile (all processes; "
        "100% is every core all the time):",
        "",
        f"| conc. | path | {' | '.join(names)} | total | machine busy |",
        f"| --- | --- | {' | '.join('---' for _ in names)} | --- | --- |",
    ]
    for level in levels:
        for path in measured_paths(level):
            cpu = level[path].get("cpu_ms_per_request", {})
            cells = [str(cpu.get(n, "-")) for n in names]
            busy = level[path].get("machine_busy")
            lines.append(
                f"| {level['concurrency']} | {path} | {' | '.join(cells)} "
                f"| {round(sum(cpu.values()), 2)} | {'-' if busy is None else f'{busy:.1%}'} |"
            )
    return lines


def floor_table(levels: list[dict[str, Any]]) -> list[str]:
    """What crossing HTTP costs (the floor against the raw path) and what the gateway's own
    work costs (the gateway against the floor), per level; nothing when no floor ran."""
    measured = [lv for lv in levels if "floor" in lv]
    if not measured:
        return []
    lines = [
        "",
        "The HTTP floor (the raw path's calls behind a bare ASGI app on uvicorn, "
        "`benchmarks/http_floor.py`): what crossing HTTP costs on this machine, and what the "
        "gateway's own work costs beyond it:",
        "",
        "| conc. | p50 floor/raw | p99 floor/raw | throughput floor/raw "
        "| p50 gateway/floor | throughput gateway/floor |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for lv in measured:
        lines.append(
            f"| {lv['concurrency']} | {lv['floor_ratio_p50']} | {lv['floor_ratio_p99']} "
            f"| {lv['floor_throughput_ratio']} | {lv['gateway_over_floor_p50']} "
            f"| {lv['gateway_over_floor_throughput']} |"
        )
    return lines


def thread_table(levels: list[dict[str, Any]]) -> list[str]:
    """The gateway's CPU milliseconds a search by thread role, per level."""
    roles = [r for _, r in THREAD_ROLES] + ["other Python", NATIVE_THREADS]
    seen = [r for r in roles if any(r in lv.get("gateway_cpu_ms_by_thread", {}) for lv in levels)]
    if not seen:
        return []
    lines = [
        "",
        "The gateway's CPU ms per search by thread (threads named by py-spy; the request "
        "threads run the search, the native ones are ONNX Runtime's and gRPC's):",
        "",
        f"| conc. | {' | '.join(seen)} |",
        f"| --- | {' | '.join('---' for _ in seen)} |",
    ]
    for level in levels:
        by_role = level.get("gateway_cpu_ms_by_thread", {})
        lines.append(
            f"| {level['concurrency']} | {' | '.join(str(by_role.get(r, '-')) for r in seen)} |"
        )
    return lines


RAW_EMBEDDING = {
    "per-call": "one model run per question, as a direct call makes (the gateway joins "
    "concurrent questions into shared runs)",
    "joined": "concurrent questions share model runs, as in the gateway",
}


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    sizes = ", ".join(str(level["block"]) for level in report["search"])
    blocks = f" of {sizes} questions" if sizes else ""
    lines = [
        f"# Gateway overhead ({report['date']})",
        "",
        f"{report.get('label') or ''}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}. "
        f"Index: {report['index_chunks']} chunks, "
        f"{report['readable_chunks']} of them readable by the benchmark key's group. "
        "Raw = the gateway's embedder in this process + the same Weaviate hybrid query (filter, "
        "candidates, alpha, fusion) through weaviate-client; interleaved with the gateway in "
        f"alternating blocks{blocks} (each path with its threads or keep-alive connections "
        "open for the whole level, after one untimed block each). Raw embedding: "
        + RAW_EMBEDDING.get(report.get("raw_embedding", "per-call"), "?")
        + ".",
        "",
        "| conc. | path | requests | err. | req/s | p50 ms | p95 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for level in report["search"]:
        for path in measured_paths(level):
            s = level[path]
            lat = s["latency_ms"]
            lines.append(
                f"| {level['concurrency']} | {path} | {s['requests']} | {s['error_rate']} "
                f"| {s['throughput_rps']} | {lat['p50']} | {lat['p95']} | {lat['p99']} |"
            )
    lines += [
        "",
        "| conc. | p50 gateway/raw | p99 gateway/raw | throughput gateway/raw "
        "| questions per embedding run in the gateway | hits scored with a kept vector |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for level in report["search"]:
        kept = level.get("gateway_hit_vectors_kept")
        lines.append(
            f"| {level['concurrency']} | {level['ratio_p50']} | {level['ratio_p99']} "
            f"| {level['throughput_ratio']} "
            f"| {level.get('gateway_questions_per_embedding_run') or '-'} "
            f"| {'-' if kept is None else kept} |"
        )
    lines += floor_table(report["search"])
    lines += cpu_table(report["search"])
    lines += thread_table(report["search"])
    if report.get("flame_graph"):
        lines += ["", f"Flame graph of the gateway at concurrency 8: `{report['flame_graph']}`"]
    s = report.get("streaming")
    if s:
        lines += [
            "",
            f"Streamed answers, {s['answered']} of {s['asked']} questions answered (ms):",
            "",
            "| measure | p50 | p95 | p99 |",
            "| --- | --- | --- | --- |",
        ]
        for name, meaning in STREAM_MEASURES.items():
            p = s[name]
            lines.append(f"| {meaning} | {p['p50']} | {p['p95']} | {p['p99']} |")
    soak_report = report.get("soak")
    if soak_report:
        r = soak_report["rss_mib"]
        lines += [
            "",
            f"Soak, {soak_report['minutes']} min at concurrency 8: requests "
            f"{soak_report['requests']}, errors {soak_report['errors']}; gateway RSS idle "
            f"{r['idle']} MiB, after warm-up {r['after_warm_up']} MiB, end {r['end']} MiB, "
            f"peak {r['peak']} MiB; growth after warm-up "
            f"{soak_report['growth_after_warm_up_pct']}%.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
