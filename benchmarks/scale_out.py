"""Scale-out: ingestion with 1..N `holdfast worker` processes and search with 1..N gateways, on
one PostgreSQL and one Weaviate, each as a ratio to the single-process figure of the same run.

    .venv/bin/python -m benchmarks.scale_out --files 200 --workers 1,2,4 --gateways 1,2 \\
        --port-base 28600 --home /tmp/hf-scale

Starts everything itself on loopback, from port ``--port-base`` up: a throwaway PostgreSQL
(tests/integration/pg_server.py's), `holdfast db upgrade`, one Weaviate, then

* **Ingestion.** The same Markdown files (sections of the Python 3.11 docs, written to
  ``--home``) are uploaded as ``--jobs`` jobs (one job is leased by one worker at a time, so
  workers only share work across jobs) and timed from the first upload to the last job's end.
  Baseline: one gateway that runs the jobs itself (``ingestion.run_in_gateway: true``). Then one
  enqueue-only gateway plus N `holdfast worker` processes for each N of ``--workers``. Every
  configuration indexes into a fresh, empty collection, so each really parses, redacts, embeds
  and writes every file. files/s, chunks/s, ratios to the baseline, and the CPU seconds each role
  (gateway, workers and their redaction pools, Weaviate, PostgreSQL) spent per chunk.
* **Search.** On the last configuration's index, 1..N gateway processes behind a client-side
  round robin, at each concurrency of ``--concurrency``. Blocks of requests alternate between
  the gateway counts (the order flips every block) so drift in the machine's load hits both
  alike. req/s, p50/p95/p99 of POST /v1/search, ratios to one gateway, CPU per request by role.

Rate limits are lifted (each gateway keeps its own in-memory counts; a shared limit would cap
the figures). CPU count, load average and the machine's busy share go in the report, written to
benchmarks/reports/scale-out-<UTC time>.{md,json}; ``--render <json>`` writes a report's .md
again (scale_out_report.py). A report, not a test: nothing is asserted. A full default run took
15 minutes on 2 cores that other users' tests kept at load 9-11; ``--files 60`` is a quick look.
The processes and their CPU accounting are in scale_out_stack.py.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.gateway_overhead import load_questions
from benchmarks.load import machine, percentiles
from benchmarks.scale_out_report import add_ratios, to_markdown
from benchmarks.scale_out_stack import GROUP, SECRETS_ENV, Meter, Stack, db_upgrade, make_key

REPORTS = Path(__file__).resolve().parent / "reports"
_HEADINGS = {"h1": "#", "h2": "##", "h3": "###", "h4": "####"}
_SPACE = re.compile(r"\s+")


# --- the corpus -------------------------------------------------------------------------------


def _blocks(html: bytes) -> Iterator[tuple[str, str]]:
    """(tag, text) of a docs page's headings, paragraphs, definitions and code, in order."""
    import lxml.html

    tree = lxml.html.fromstring(html.decode("utf-8", errors="replace"))
    bodies = tree.xpath('//div[@role="main"]')
    body = bodies[0] if bodies else tree
    for bad in body.xpath('.//script|.//style|.//a[@class="headerlink"]'):
        bad.drop_tree()
    for el in body.iter("h1", "h2", "h3", "h4", "p", "pre", "dt"):
        if el.tag == "pre":
            yield "pre", el.text_content().strip("\n")
        else:
            yield el.tag, _SPACE.sub(" ", el.text_content()).strip()


def page_markdown(blocks: Iterator[tuple[str, str]], words: int) -> list[str]:
    """One page's blocks as Markdown texts of about ``words`` words (cut at a heading where one
    is near), each under the page's title; a tail under a third of ``words`` is dropped."""
    title, texts, lines, n = "", [], [], 0

    def flush() -> None:
        nonlocal lines, n
        if n >= words // 3:
            texts.append("\n\n".join(lines))
        lines, n = [], 0

    for tag, text in blocks:
        if not text:
            continue
        if tag == "h1" and not title:
            title = text
            continue
        if n >= words or (tag in _HEADINGS and n >= words * 0.6):
            flush()  # at a heading where one is near, else between blocks
        if tag in _HEADINGS:
            lines.append(f"{_HEADINGS[tag]} {text}")
        elif tag == "pre":
            lines.append(f"```\n{text}\n```")
        else:
            lines.append(text)
        n += len(text.split())
    flush()
    return [f"# {title}\n\n{body}\n" for body in texts]


def markdown_files(root: Path, out: Path, count: int, words: int, per_page: int = 2) -> list[Path]:
    """``count`` Markdown files of about ``words`` words each from the pages of the Python docs
    under ``root`` (library pages first, at most ``per_page`` files per page)."""
    from benchmarks.python_docs.corpus import page_ids

    out.mkdir(parents=True, exist_ok=True)
    ids = page_ids(root)
    ids = [i for i in ids if i.startswith("library/")] + [
        i for i in ids if not i.startswith("library/")
    ]
    made: list[Path] = []
    for page_id in ids:
        stem = page_id.removesuffix(".html").replace("/", "-")
        texts = page_markdown(_blocks((root / page_id).read_bytes()), words)
        for k, text in enumerate(texts[: min(per_page, count - len(made))]):
            path = out / f"{stem}-{k:02d}.md"
            path.write_text(text)
            made.append(path)
        if len(made) >= count:
            break
    return made


# --- ingestion ----------------------------------------------------------------------------------


def upload_and_wait(
    client: httpx.Client, parts: list[list[Path]]
) -> tuple[list[dict[str, Any]], float]:
    """Each part as one job (uploaded one after the other); the ended jobs, and the seconds
    the uploads took. Polls every 0.5 s: the caller's clock stops at the poll that sees the
    last job end (a job's finished_at has whole seconds only)."""
    ids: list[str] = []
    t0 = time.time()
    for part in parts:
        with ExitStack() as opened:
            payload = [
                ("files", (p.name, opened.enter_context(p.open("rb")), "text/markdown"))
                for p in part
            ]
            reply = client.post(
                "/v1/documents", files=payload, data={"access_groups": GROUP, "redact": "true"}
            )
        reply.raise_for_status()
        ids.append(reply.json()["job_id"])
    uploaded = time.time() - t0
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        for job_id in ids:
            if job_id not in done:
                job = client.get(f"/v1/jobs/{job_id}").json()
                if job["status"] not in ("queued", "running"):
                    done[job_id] = job
        if len(done) < len(ids):
            time.sleep(0.5)
    return list(done.values()), uploaded


def _pool_ready(pid: int, size: int) -> bool:
    """Whether ``pid`` has started its redaction pool (``size`` spawned processes)."""
    try:
        children = psutil.Process(pid).children()
    except psutil.Error:
        return False
    spawned = [c for c in children if "spawn_main" in " ".join(_cmdline(c))]
    return len(spawned) >= size


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def warm(client: httpx.Client, folder: Path, runners: list[int], pool_size: int) -> int:
    """Small jobs until every process that runs jobs has its redaction pool up (a pool starts
    at its first batch: in a short run that start would be most of the difference between
    configurations, not a steady rate). Returns the warm-up jobs uploaded."""
    folder.mkdir(parents=True, exist_ok=True)
    sent = 0
    for _ in range(4):
        cold = [pid for pid in runners if not _pool_ready(pid, pool_size)]
        if not cold:
            break
        parts = []
        for _ in range(2 * len(cold)):
            path = folder / f"warm-up-{sent:03d}.md"
            path.write_text(f"# Warm-up {sent}\n\nMaria Jones checked the nightly build {sent}.\n")
            parts.append([path])
            sent += 1
        upload_and_wait(client, parts)
    return sent


def ingest(
    url: str, key: str, files: list[Path], jobs: int, meter: Meter, cores: int
) -> dict[str, Any]:
    """Upload ``files`` as ``jobs`` jobs and time them from the first upload to the end of
    the last job."""
    parts = [files[i::jobs] for i in range(jobs) if files[i::jobs]]
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
        meter.start()
        t0 = time.time()
        done, uploaded = upload_and_wait(client, parts)
        seconds = time.time() - t0
        meter.stop()
    chunks = sum(int(j["chunks_written"]) for j in done)
    indexed = sum(1 for j in done for f in j["files"] if f["status"] == "indexed")
    cpu = meter.cpu_s
    return {
        "jobs": len(done),
        "files": len(files),
        "files_indexed": indexed,
        "job_statuses": sorted({j["status"] for j in done}),
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "upload_seconds": round(uploaded, 2),
        "files_per_s": round(len(files) / seconds, 3),
        "chunks_per_s": round(chunks / seconds, 2),
        "machine_busy": meter.machine_busy,
        # Holdfast's processes' share of all the machine's CPU time while this ran
        "holdfast_cpu_share": round(sum(cpu.values()) / (seconds * cores), 3),
        "cpu_s": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_ms_per_chunk": {k: round(v * 1000 / chunks, 1) for k, v in cpu.items()}
        if chunks
        else {},
    }


# --- search -------------------------------------------------------------------------------------


async def _search_block(
    urls: list[str], key: str, questions: list[str], concurrency: int
) -> tuple[list[float], int, float]:
    """``questions`` through ``urls`` in turn (round robin), ``concurrency`` in flight."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for q in questions:
        queue.put_nowait(q)
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [
        httpx.AsyncClient(base_url=u, headers=headers, timeout=120, limits=limits) for u in urls
    ]
    turn = itertools.cycle(clients)

    async def worker() -> None:
        nonlocal errors
        while not queue.empty():
            question = queue.get_nowait()
            client = next(turn)
            start = time.perf_counter()
            try:
                reply = await client.post("/v1/search", json={"query": question})
            except httpx.HTTPError:
                errors += 1
                continue
            if reply.status_code == 200:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                errors += 1

    try:
        await asyncio.gather(*(c.get("/healthz") for c in clients))  # connections warm
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return latencies, errors, seconds


def search(
    stack: Stack,
    urls: list[str],
    key: str,
    questions: list[str],
    counts: list[int],
    concurrency: int,
    requests: int,
    block: int,
) -> dict[int, dict[str, Any]]:
    """Alternating blocks of ``block`` requests per gateway count; totals per count."""
    runs = {g: {"lat": [], "errors": 0, "seconds": 0.0, "meter": Meter(stack)} for g in counts}
    for i, start in enumerate(range(0, requests, block)):
        chunk = [
            questions[(start + j) % len(questions)] for j in range(min(block, requests - start))
        ]
        order = counts if i % 2 == 0 else list(reversed(counts))
        for g in order:
            run = runs[g]
            run["meter"].start()
            lat, err, secs = asyncio.run(_search_block(urls[:g], key, chunk, concurrency))
            run["meter"].stop()
            run["lat"] += lat
            run["errors"] += err
            run["seconds"] += secs
    out = {}
    for g, run in runs.items():
        ok = len(run["lat"])
        cpu = run["meter"].cpu_s
        out[g] = {
            "gateways": g,
            "concurrency": concurrency,
            "requests": ok + run["errors"],
            "errors": run["errors"],
            "rps": round(ok / run["seconds"], 2) if run["seconds"] else 0.0,
            "latency_ms": percentiles(run["lat"]),
            "cpu_ms_per_request": {k: round(v * 1000 / ok, 1) for k, v in cpu.items()}
            if ok
            else {},
        }
    return out


# --- the run ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.python_docs.corpus import docs_root
    from tests.integration.pg_server import running_postgres

    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ.update(SECRETS_ENV)
    os.environ["HOLDFAST_HOME"] = str(home)  # nothing of the user's own home is read
    os.environ["HOLDFAST_CONFIG"] = str(home / "none.yaml")
    files = markdown_files(docs_root(), home / "corpus", args.files, args.words)
    worker_counts = [int(x) for x in args.workers.split(",") if x.strip()]
    gateway_counts = [int(x) for x in args.gateways.split(",") if x.strip()]
    levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    base = args.port_base
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "corpus": {
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "words_target": args.words,
            "jobs": args.jobs,
        },
        "ingestion": [],
        "search": [],
    }
    with running_postgres(base) as dsn:
        os.environ["HOLDFAST_DATABASE__URL"] = dsn
        db_upgrade(dsn)
        stack = Stack(home, dsn, base)
        try:
            stack.start_weaviate()
            cores = os.cpu_count() or 1
            pool_size = stack.settings.ingestion.redaction_workers
            configs = [("baseline", 0)] + [(f"{n} worker(s)", n) for n in worker_counts]
            last = f"ScaleOut{len(configs) - 1}"  # the index the search part reads
            url, key = "", ""
            for i, (label, n) in enumerate(configs):
                collection = f"ScaleOut{i}"
                print(f"ingestion: {label} …", flush=True)
                if n == 0:  # the single process: a gateway that runs the jobs itself
                    url = stack.start_gateway("baseline-gw", base + 10, collection, run_jobs=True)
                elif "enqueue-gw" not in stack.gateways:  # one enqueue-only gateway for all N
                    stack.stop_gateway("baseline-gw")
                    url = stack.start_gateway("enqueue-gw", base + 11, last, run_jobs=False)
                for w in range(n):
                    stack.start_worker(f"worker-{w}", collection)
                stack.wait_workers()
                key = key or make_key(url)
                headers = {"Authorization": f"Bearer {key}"}
                with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
                    warm_jobs = warm(client, home / f"warm-{i}", stack.job_runners(), pool_size)
                row = ingest(url, key, files, args.jobs, Meter(stack), cores)
                row |= {"config": label, "workers": n, "warm_up_jobs": warm_jobs}
                report["ingestion"].append(row)
                print(f"  {row['chunks_per_s']} chunks/s, {row['files_per_s']} files/s", flush=True)
                stack.stop_workers()
            if "baseline-gw" in stack.gateways:  # no worker counts were asked for
                stack.stop_gateway("baseline-gw")
                url = stack.start_gateway("enqueue-gw", base + 11, last, run_jobs=False)
            urls = [url] + [
                stack.start_gateway(f"search-gw-{g}", base + 11 + g, last, run_jobs=False)
                for g in range(1, max(gateway_counts))
            ]
            questions = load_questions(10_000)
            for level in levels:
                print(f"search at concurrency {level} …", flush=True)
                asyncio.run(_search_block(urls, key, questions[:20], level))  # warm-up
                rows = search(
                    stack, urls, key, questions, gateway_counts, level, args.searches, args.block
                )
                report["search"] += list(rows.values())
        finally:
            stack.stop_all()
    report["load_after"] = [round(x, 2) for x in os.getloadavg()]
    add_ratios(report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--files", type=int, default=200, help="Markdown files to ingest")
    parser.add_argument("--words", type=int, default=200, help="about this many words per file")
    parser.add_argument("--jobs", type=int, default=8, help="uploads the files are split into")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    parser.add_argument("--gateways", default="1,2", help="gateway counts to measure (search)")
    parser.add_argument("--concurrency", default="8,16", help="search concurrency levels")
    parser.add_argument("--searches", type=int, default=240, help="searches per gateway count")
    parser.add_argument("--block", type=int, default=40, help="searches per alternating block")
    parser.add_argument("--port-base", type=int, default=28600, help="ports from here to +30")
    parser.add_argument("--home", default="/tmp/hf-scale", help="scratch folder (emptied first)")
    parser.add_argument("--no-report", action="store_true", help="print only, write no files")
    parser.add_argument(
        "--render", metavar="JSON", help="only write a report's .md again from its .json"
    )
    args = parser.parse_args()
    if args.render:
        stem = Path(args.render).with_suffix("")
        stem.with_suffix(".md").write_text(
            to_markdown(json.loads(stem.with_suffix(".json").read_text()))
        )
        print(stem.with_suffix(".md").read_text())
        return

    from gateway.offline import enforce_offline_env

    enforce_offline_env()
    started = time.monotonic()
    report = run(args)
    report["command"] = "python -m benchmarks.scale_out " + " ".join(sys.argv[1:])
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    text = to_markdown(report)
    print(text)
    print(f"wall time {report['wall_seconds']} s")
    if not args.no_report:
        REPORTS.mkdir(parents=True, exist_ok=True)
        stem = REPORTS / f"scale-out-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
        stem.with_suffix(".md").write_text(text)
        print(f"wrote {stem}.md and .json")


if __name__ == "__main__":
    main()
