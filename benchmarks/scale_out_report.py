"""Ratios, the interpretation and the Markdown of a scale-out report (``benchmarks.scale_out``)."""

from __future__ import annotations

from typing import Any


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def add_ratios(report: dict[str, Any]) -> None:
    rows = report["ingestion"]
    base = next((r for r in rows if r["workers"] == 0), None)
    for r in rows:
        r["ratio"] = _ratio(r["chunks_per_s"], base["chunks_per_s"]) if base else None
    for level in {r["concurrency"] for r in report["search"]}:
        same = [r for r in report["search"] if r["concurrency"] == level]
        one = next((r for r in same if r["gateways"] == 1), None)
        for r in same:
            r["ratio"] = _ratio(r["rps"], one["rps"]) if one else None


def _per_cpu_s(row: dict[str, Any]) -> float:
    """Chunks per CPU second of all Holdfast's processes (workers, gateway, Weaviate, PG)."""
    spent = sum(row["cpu_s"].values())
    return round(row["chunks"] / spent, 2) if spent else 0.0


def interpretation(report: dict[str, Any]) -> list[str]:
    """What the numbers say, in sentences built from them. The ceilings are CPU arithmetic:
    cores divided by the CPU one chunk (or search) costs all of Holdfast's processes."""
    cores = report["machine"]["cores"]
    lines: list[str] = []
    base = next((r for r in report["ingestion"] if not r["workers"]), None)
    rows = [r for r in report["ingestion"] if r["workers"]]
    if base and rows:
        best = max(rows, key=lambda r: r["chunks_per_s"])
        efficiency = [_per_cpu_s(r) for r in report["ingestion"]]
        ratios = ", ".join(f"{r['workers']} worker(s) {r['ratio']}x" for r in rows)
        shares = " -> ".join(f"{r['holdfast_cpu_share']:.0%}" for r in report["ingestion"])
        lines.append(
            f"Ingestion, measured: {ratios} the single process ({base['chunks_per_s']} "
            f"chunks/s). The ratios follow Holdfast's share of the machine's CPU "
            f"({shares}; the machine was {max(r['machine_busy'] for r in report['ingestion']):.0%}"
            " busy with other users' work too), not faster work: chunks per CPU second of all "
            f"Holdfast's processes stayed {min(efficiency)}-{max(efficiency)}. On a contended "
            "host the kernel shares the CPU per runnable thread, so more processes win more of "
            "it; that is not a gain a dedicated host would show."
        )
        ceiling = cores * max(efficiency)
        lines.append(
            f"Where this {cores}-core machine saturates (ingestion): at about {ceiling:.0f} "
            f"chunks/s for the whole stack ({cores} cores x {max(efficiency)} chunks per CPU "
            "second), whatever the number of workers: on one host the embedder, the redaction "
            "pools, Weaviate and PostgreSQL share the same cores. The best run here reached "
            f"{best['chunks_per_s']} chunks/s with {best['holdfast_cpu_share']:.0%} of the CPU."
        )
        one = next((r for r in rows if r["workers"] == 1), rows[0])
        per = one["cpu_ms_per_chunk"]
        worker_ms = per.get("workers", 0.0)
        if worker_ms:
            lines.append(
                f"Per chunk (1 worker): the worker and its redaction pool (parse, redact, embed) "
                f"{worker_ms} ms CPU, Weaviate {per.get('weaviate', 0.0)} ms, PostgreSQL "
                f"{per.get('postgres', 0.0)} ms, the enqueueing gateway "
                f"{per.get('gateways', 0.0)} ms. Per added worker node: about "
                f"{1000 / worker_ms:.1f} chunks/s per core of its own (CPU embedding), as long as "
                f"Weaviate (one core per ~{1000 / max(per.get('weaviate', 0.1), 0.1):.0f} "
                f"chunks/s) and PostgreSQL (one core per ~"
                f"{1000 / max(per.get('postgres', 0.1), 0.1):.0f} chunks/s) keep up. "
                "PostgreSQL's and the gateway's shares include this benchmark's polling of the "
                "jobs (every 0.5 s), so they fall as a run gets shorter."
            )
    for level in sorted({r["concurrency"] for r in report["search"]}):
        same = sorted(
            (r for r in report["search"] if r["concurrency"] == level), key=lambda r: r["gateways"]
        )
        top, cpu = same[-1], same[0].get("cpu_ms_per_request", {})
        gateway_ms, weaviate_ms = cpu.get("gateways", 0.0), cpu.get("weaviate", 0.0)
        per_request = gateway_ms + weaviate_ms
        lines.append(
            f"Search at concurrency {level}: {top['gateways']} gateways gave {top['ratio']}x one "
            f"gateway's {same[0]['rps']} req/s (p99 {same[0]['latency_ms']['p99']} -> "
            f"{top['latency_ms']['p99']} ms). A search cost the gateway {gateway_ms} ms CPU "
            f"(auth, question redaction, embedding, fusion) and Weaviate {weaviate_ms} ms: this "
            f"machine's ceiling is about {cores * 1000 / per_request:.0f} req/s whatever the "
            f"number of gateways; an added gateway node gives about {1000 / gateway_ms:.0f} "
            f"req/s per core, with one Weaviate core per ~{1000 / weaviate_ms:.0f} req/s."
            if gateway_ms and weaviate_ms
            else f"Search at concurrency {level}: {top['gateways']} gateways gave "
            f"{top['ratio']}x one gateway's {same[0]['rps']} req/s."
        )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    m, c = report["machine"], report["corpus"]
    lines = [
        f"# Scale-out ({report['date']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}. "
        f"Load average (1/5/15 min) before {report['load_before']}, after "
        f"{report['load_after']} (a shared machine: others' tests ran too; ratios compare "
        "configurations measured in the same run). Command: "
        f"`{report.get('command', '')}`, {report.get('wall_seconds', '?')} s in all.",
        "",
        f"Corpus: {c['files']} Markdown files ({c['bytes'] // 1024} KiB) cut from the Python 3.11 "
        f"docs, about {c['words_target']} words each, uploaded as {c['jobs']} jobs, redaction on "
        "(the default strict profile). One PostgreSQL, one Weaviate; each configuration indexes "
        "into a fresh collection, after small warm-up jobs that start every job runner's "
        "redaction pool. Search: blocks of requests alternate between the gateway counts.",
        "",
        "## Ingestion",
        "",
        "| configuration | chunks | seconds | files/s | chunks/s | ratio | machine busy "
        "| Holdfast's CPU share | chunks per CPU s | ratio per CPU s "
        "| CPU ms/chunk: workers / gateway / Weaviate / PostgreSQL |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = next((r for r in report["ingestion"] if not r["workers"]), None)
    for r in report["ingestion"]:
        p = r["cpu_ms_per_chunk"]
        name = (
            "1 gateway, jobs in-process (baseline)"
            if not r["workers"]
            else (f"1 gateway (enqueue only) + {r['workers']} worker(s)")
        )
        lines.append(
            f"| {name} | {r['chunks']} | {r['seconds']} | {r['files_per_s']} | "
            f"{r['chunks_per_s']} | {r['ratio']} | {r['machine_busy']:.0%} | "
            f"{r['holdfast_cpu_share']:.0%} | {_per_cpu_s(r)} | "
            f"{_ratio(_per_cpu_s(r), _per_cpu_s(base)) if base else ''} | "
            f"{p.get('workers', 0)} / {p.get('gateways', 0)} / {p.get('weaviate', 0)} / "
            f"{p.get('postgres', 0)} |"
        )
    lines += [
        "",
        "## Search (POST /v1/search, client-side round robin)",
        "",
        "| gateways | conc. | requests | errors | req/s | ratio | p50 ms | p95 ms | p99 ms "
        "| CPU ms/req: gateways / Weaviate |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report["search"]:
        lat, p = r["latency_ms"], r["cpu_ms_per_request"]
        lines.append(
            f"| {r['gateways']} | {r['concurrency']} | {r['requests']} | {r['errors']} | "
            f"{r['rps']} | {r['ratio']} | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
            f"{p.get('gateways', 0)} / {p.get('weaviate', 0)} |"
        )
    lines += ["", "## What it says", ""] + [f"- {s}" for s in interpretation(report)]
    return "\n".join(lines) + "\n"
