"""Gateway latency and throughput against the real local stack, with a raw baseline in the same run.

    .venv/bin/python -m benchmarks.load [--quick]

Starts its own stack (Weaviate, Ollama, gateway) in a temporary HOLDFAST_HOME on spare ports,
indexes the golden corpus, then measures:
  * raw baselines: in-process embedding of a question, and a Weaviate hybrid query with a
    precomputed vector (the two calls a search makes);
  * /v1/search at concurrency 1, 8, 32;
  * /v1/query streaming at concurrency 1, 8, 32: time to first token and to the end;
  * the per-stage breakdown the gateway reports in ``timings_ms``, and the same stages read from
    its Prometheus histograms (``GET /metrics``) across the whole /v1/query run.
Writes benchmarks/reports/load-<UTC date>.{md,json}. A report, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx

from benchmarks.stage_metrics import stage_breakdown
from gateway.security.secrets import id_key
from ingestion.identity import Identity

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
REPORTS = Path(__file__).resolve().parent / "reports"


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99)}


@dataclass
class LevelResult:
    endpoint: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    latency_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    stages: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "endpoint": self.endpoint,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "throughput_rps": round(self.requests / self.seconds, 3) if self.seconds else 0.0,
            "latency_ms": percentiles(self.latency_ms),
        }
        if self.ttft_ms:
            out["ttft_ms"] = percentiles(self.ttft_ms)
        if self.stages:
            out["stages_p50_ms"] = {k: percentiles(v)["p50"] for k, v in self.stages.items()}
        return out


async def _search_once(client: httpx.AsyncClient, question: str, result: LevelResult) -> None:
    start = time.perf_counter()
    response = await client.post("/v1/search", json={"query": question, "top_k": 5})
    result.latency_ms.append((time.perf_counter() - start) * 1000)
    if response.status_code != 200:
        result.errors += 1


async def _query_once(client: httpx.AsyncClient, question: str, result: LevelResult) -> None:
    start = time.perf_counter()
    first: float | None = None
    ok = False
    async with client.stream(
        "POST", "/v1/query", json={"question": question, "stream": True}
    ) as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "token" and first is None:
                first = time.perf_counter()
            elif line.startswith("data: ") and event == "done":
                ok = True
    end = time.perf_counter()
    result.latency_ms.append((end - start) * 1000)
    if first is not None:
        result.ttft_ms.append((first - start) * 1000)
    if response.status_code != 200 or not ok:
        result.errors += 1
    # the non-streaming call reports per-stage timings; sample them once per request
    body = (await client.post("/v1/query", json={"question": question})).json()
    for stage, ms in body.get("timings_ms", {}).items():
        result.stages[stage].append(ms)


async def run_level(
    url: str, key: str, endpoint: str, concurrency: int, questions: list[str], total: int
) -> LevelResult:
    result = LevelResult(endpoint, concurrency, total, 0, 0.0)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(questions[i % len(questions)])
    once = _search_once if endpoint == "/v1/search" else _query_once

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            question = queue.get_nowait()
            try:
                await once(client, question, result)
            except httpx.HTTPError:
                result.errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=600, limits=limits
    ) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "versions": {
            p: _installed_version(p)
            for p in ("holdfast", "weaviate-client", "litellm", "onnxruntime", "fastapi")
        },
    }


def _installed_version(package: str) -> str:
    """The package's version, or "not installed" (a missing one must not lose a finished run)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def baselines(components: Any, questions: list[str], n: int) -> dict[str, Any]:
    embed_ms, search_ms = [], []
    vectors = []
    for i in range(n):
        start = time.perf_counter()
        vectors.append(components.embedder.embed_query(questions[i % len(questions)]))
        embed_ms.append((time.perf_counter() - start) * 1000)
    for i in range(n):
        start = time.perf_counter()
        components.store.search(
            groups=["bench"],
            query=questions[i % len(questions)],
            vector=vectors[i],
            limit=5,
            alpha=components.settings.retrieval.alpha,
        )
        search_ms.append((time.perf_counter() - start) * 1000)
    return {"embed_query_ms": percentiles(embed_ms), "weaviate_hybrid_ms": percentiles(search_ms)}


def model_server_rates(base_url: str, model: str, prompts: list[str], n: int) -> dict[str, Any]:
    """The LLM server's own speed, from its native API's counters: tokens/s of prompt
    evaluation and of generation, per request (a fresh prompt each time, so no prompt cache)."""
    generation, prompt_eval = [], []
    with httpx.Client(base_url=base_url, timeout=300.0) as client:
        for i in range(n):
            response = client.post(
                "/api/generate",
                json={
                    "model": model,
                    "prompt": f"Request {i}. In three sentences: {prompts[i % len(prompts)]}",
                    "stream": False,
                    "options": {"num_predict": 96, "temperature": 0},
                },
            )
            response.raise_for_status()
            body = response.json()
            if body.get("eval_duration"):
                generation.append(body["eval_count"] / body["eval_duration"] * 1e9)
            if body.get("prompt_eval_duration"):
                prompt_eval.append(body["prompt_eval_count"] / body["prompt_eval_duration"] * 1e9)
    return {
        "requests": n,
        "generation_tokens_per_s": percentiles(generation),
        "prompt_eval_tokens_per_s": percentiles(prompt_eval),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--port-base", type=int, default=27100, help="below the ephemeral range")
    args = parser.parse_args()

    from gateway.container import build_components
    from gateway.local import stack
    from gateway.local.cpu_features import llm_cpu_features
    from gateway.offline import enforce_offline_env
    from gateway.security.keys import KeyStore
    from gateway.settings import Settings
    from ingestion.pipeline import ChunkingPolicy, ingest_files

    enforce_offline_env()
    base = args.port_base
    home = Path(tempfile.mkdtemp(prefix="holdfast-bench-"))
    settings = Settings(
        home=home,
        weaviate={
            "http_port": base,
            "grpc_port": base + 1,
            "gossip_port": base + 2,
            "data_port": base + 3,
            "raft_port": base + 4,
            "raft_rpc_port": base + 5,
        },
        ollama={"port": base + 6},
        gateway={"port": base + 7},
        limits={"rate_per_minute": 1_000_000, "burst": 100_000},
    )
    questions = [
        json.loads(line)["question"]
        for line in (GOLDEN / "golden.jsonl").read_text().splitlines()
        if json.loads(line)["type"] != "unanswerable"
    ]
    search_plan = {1: 40, 8: 160, 32: 320} if not args.quick else {1: 10, 8: 16, 32: 32}
    query_plan = {1: 4, 8: 8, 32: 32} if not args.quick else {1: 1, 8: 8, 32: 32}
    try:
        print(f"starting a stack in {home} …")
        stack.up(settings)
        components = build_components(settings)
        components.warm_up()
        ingest_files(
            sorted((GOLDEN / "corpus").glob("*.md")),
            groups=["bench"],
            store=components.store,
            embedder=components.embedder,
            redactor=components.redactor,
            policy=ChunkingPolicy(),
            identity=Identity(id_key(settings)),
        )
        _, key = KeyStore(settings.keys_db).create("bench", groups=["bench"], roles=["query"])
        print("baselines …")
        raw = baselines(components, questions, 50 if args.quick else 200)
        print("the LLM server's own token rates …")
        llm = model_server_rates(
            settings.ollama.base_url, settings.ollama.chat_model, questions, 3 if args.quick else 10
        )
        llm["cpu_features"] = llm_cpu_features(settings.logs_dir / "ollama.log")
        rows = []
        stage_metrics: dict[str, dict[str, float]] = {}
        for endpoint, plan in (("/v1/search", search_plan), ("/v1/query", query_plan)):
            before = _scrape_metrics(settings.gateway.base_url)
            for concurrency, total in plan.items():
                print(f"{endpoint} at concurrency {concurrency} ({total} requests) …")
                level = asyncio.run(
                    run_level(
                        settings.gateway.base_url, key, endpoint, concurrency, questions, total
                    )
                )
                rows.append(level.row())
            if endpoint == "/v1/query":
                stage_metrics = stage_breakdown(before, _scrape_metrics(settings.gateway.base_url))
    finally:
        stack.down(settings)
    search_c1 = next(r for r in rows if r["endpoint"] == "/v1/search" and r["concurrency"] == 1)
    raw_total = raw["embed_query_ms"]["p50"] + raw["weaviate_hybrid_ms"]["p50"]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "chat_model": settings.ollama.chat_model,
        "baseline": raw,
        "llm_server": llm,
        "gateway_search_overhead_ratio_p50": round(search_c1["latency_ms"]["p50"] / raw_total, 2)
        if raw_total
        else None,
        "levels": rows,
        "stage_metrics": stage_metrics,
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    stem = REPORTS / f"load-{datetime.now(UTC):%Y-%m-%d}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    stem.with_suffix(".md").write_text(to_markdown(report))
    print(to_markdown(report))


def _scrape_metrics(url: str) -> str:
    response = httpx.get(f"{url.rstrip('/')}/metrics", timeout=30)
    response.raise_for_status()
    return response.text


def _llm_lines(llm: dict[str, Any] | None) -> list[str]:
    if not llm:
        return []
    gen, prompt = llm["generation_tokens_per_s"], llm["prompt_eval_tokens_per_s"]
    features = " ".join(llm.get("cpu_features") or []) or "not logged"
    return [
        f"- LLM server alone ({llm['requests']} requests): generation p50 {gen['p50']} tok/s "
        f"(p95 {gen['p95']}), prompt evaluation p50 {prompt['p50']} tok/s; CPU features in its "
        f"log: {features}",
    ]


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Gateway load benchmark ({report['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}; "
        f"chat model {report['chat_model']} on Ollama (CPU).",
        "",
        "Baseline measured in the same run (in-process, no HTTP):",
        "",
        f"- embed one question: p50 {report['baseline']['embed_query_ms']['p50']} ms, "
        f"p95 {report['baseline']['embed_query_ms']['p95']} ms",
        f"- Weaviate hybrid query: p50 {report['baseline']['weaviate_hybrid_ms']['p50']} ms, "
        f"p95 {report['baseline']['weaviate_hybrid_ms']['p95']} ms",
        f"- gateway `/v1/search` p50 at concurrency 1 / (embed + Weaviate p50): "
        f"**{report['gateway_search_overhead_ratio_p50']}x**",
        *_llm_lines(report.get("llm_server")),
        "",
        "| endpoint | conc. | requests | err. rate | req/s | p50 ms | p95 ms | p99 ms "
        "| TTFT p50 ms | TTFT p95 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["levels"]:
        ttft = r.get("ttft_ms", {})
        lines.append(
            f"| {r['endpoint']} | {r['concurrency']} | {r['requests']} | {r['error_rate']} "
            f"| {r['throughput_rps']} | {r['latency_ms']['p50']} | {r['latency_ms']['p95']} "
            f"| {r['latency_ms']['p99']} | {ttft.get('p50', '')} | {ttft.get('p95', '')} |"
        )
    stages = [r for r in report["levels"] if "stages_p50_ms" in r]
    if stages:
        lines += ["", "Per-stage p50 (ms) of `/v1/query`, from the gateway's `timings_ms`:", ""]
        names = sorted({k for r in stages for k in r["stages_p50_ms"]})
        lines += ["| conc. | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
        for r in stages:
            lines.append(
                f"| {r['concurrency']} | "
                + " | ".join(str(r["stages_p50_ms"].get(n, "")) for n in names)
                + " |"
            )
    histograms = report.get("stage_metrics") or {}
    if histograms:
        lines += [
            "",
            "Per-stage latency of the whole `/v1/query` run, from the gateway's Prometheus "
            "histogram `holdfast_query_stage_duration_seconds` (percentiles interpolated in "
            "buckets; streamed answers are not timed per stage):",
            "",
            "| stage | count | mean ms | p50 ms | p95 ms | p99 ms |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for stage, h in histograms.items():
            lines.append(
                f"| {stage} | {h['count']} | {h['mean_ms']} | {h['p50_ms']} | {h['p95_ms']} "
                f"| {h['p99_ms']} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
