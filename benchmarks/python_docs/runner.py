"""One eval run: the baseline arms and the product arms over the same pages and questions."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from benchmarks.python_docs.baselines import Ranked, WindowIndex, raw_embedding_rate, rrf
from benchmarks.python_docs.corpus import cache_dir, docs_version, load_pages, page_ids
from benchmarks.python_docs.metrics import METRICS, auroc, average, page_metrics
from benchmarks.python_docs.product import (
    PRODUCT_ARMS,
    Arm,
    IngestStats,
    ProductClient,
    ingest,
    load_ingest,
    page_ranking,
    save_ingest,
)
from benchmarks.python_docs.questions import Question, load_fast_pages, load_questions

BASELINE_ARMS = ("bm25", "hybrid-baseline", "dense")
ALL_ARMS = (*BASELINE_ARMS, *PRODUCT_ARMS)
Progress = Callable[[str, int, int], None]  # (task, done, total)


@dataclass
class ProductAccess:
    url: str
    ingest_key: str | None  # admin or ingest role; None = upload nothing, the pages are there
    query_keys: dict[str, str]  # arm name -> a key that reads only that arm's group
    top_k: int = 20


@dataclass
class ArmResult:
    name: str
    rankings: dict[str, list[str]] = field(default_factory=dict)  # question id -> top pages
    top_scores: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)  # product: retrieval_status
    latencies_ms: list[float] = field(default_factory=list)
    ingest: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class RunResult:
    fast: bool
    pages: list[str]
    questions: list[Question]
    arms: dict[str, ArmResult]
    docs_version: str
    timings_s: dict[str, float]
    environment: dict[str, Any]
    windows: int = 0
    embedding: dict[str, float] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)  # chat model -> answers.AnswerArm
    answers_sample: dict[str, Any] = field(default_factory=dict)

    def scored(self, arm: str) -> dict[str, dict[str, float]]:
        """Per answerable question: its page metrics in ``arm``."""
        result = self.arms[arm]
        return {
            q.id: page_metrics(result.rankings.get(q.id, []), q.gold_pages)
            for q in self.questions
            if q.answerable and q.id in result.rankings
        }

    def summary(self, arm: str) -> dict[str, Any]:
        result = self.arms[arm]
        rows = self.scored(arm)
        answerable = [q for q in self.questions if q.answerable]
        unanswerable = [q for q in self.questions if not q.answerable]
        out: dict[str, Any] = {"questions_scored": len(rows), **average(list(rows.values()))}
        pos = [result.top_scores[q.id] for q in answerable if q.id in result.top_scores]
        neg = [result.top_scores[q.id] for q in unanswerable if q.id in result.top_scores]
        out["unanswerable_auroc"] = auroc(pos, neg)
        if result.statuses:
            out["refused_unanswerable"] = _share(result.statuses, unanswerable, refused=True)
            out["refused_answerable"] = _share(result.statuses, answerable, refused=True)
        if result.latencies_ms:
            out["latency_p50_ms"] = statistics.median(result.latencies_ms)
            out["latency_p95_ms"] = percentile(result.latencies_ms, 95)
        arm_spec = PRODUCT_ARMS.get(arm)
        if arm_spec is not None and arm_spec.rerank and "product" in self.arms:
            out["added_latency_over_product_ms"] = added_latency_ms(self.arms["product"], result)
        return out

    def by_style(self, arm: str) -> dict[str, dict[str, float]]:
        rows = self.scored(arm)
        styles: dict[str, list[dict[str, float]]] = {}
        for q in self.questions:
            if q.id in rows:
                styles.setdefault(q.style, []).append(rows[q.id])
        return {s: {"n": float(len(r)), **average(r)} for s, r in styles.items()}


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile by linear interpolation between closest ranks."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    at = (len(ordered) - 1) * pct / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def added_latency_ms(base: ArmResult, other: ArmResult) -> dict[str, float] | None:
    """What ``other`` adds to ``base`` per question (the same questions in the same order, on
    the same stack): p50 and p95 of the differences, e.g. the reranker's cost over hybrid."""
    n = min(len(base.latencies_ms), len(other.latencies_ms))
    if not n:
        return None
    diffs = [other.latencies_ms[i] - base.latencies_ms[i] for i in range(n)]
    return {"p50": statistics.median(diffs), "p95": percentile(diffs, 95), "n": float(n)}


def _share(statuses: dict[str, str], questions: Sequence[Question], *, refused: bool) -> float:
    seen = [statuses[q.id] for q in questions if q.id in statuses]
    if not seen:
        return 0.0
    return sum((s != "ok") == refused for s in seen) / len(seen)


def select(fast: bool, questions_file: Path | None = None) -> tuple[list[Question], list[str]]:
    """The questions and the pages of a run: the fast subset over its page list, or everything."""
    from benchmarks.python_docs.corpus import docs_root

    questions = load_questions(questions_file) if questions_file else load_questions()
    if fast:
        return [q for q in questions if q.fast], load_fast_pages()
    return questions, page_ids(docs_root())


def run_baselines(
    arms: Sequence[str],
    index: WindowIndex,
    questions: Sequence[Question],
    version: str,
    progress: Progress,
    timings: dict[str, float],
) -> tuple[dict[str, ArmResult], dict[str, float]]:
    results = {a: ArmResult(a) for a in arms if a in BASELINE_ARMS}
    embedding: dict[str, float] = {}
    need_dense = bool({"dense", "hybrid-baseline"} & set(results))
    need_bm25 = bool({"bm25", "hybrid-baseline"} & set(results))
    started = time.perf_counter()
    if need_bm25:
        index.build_bm25()
    timings["bm25_index"] = time.perf_counter() - started
    if need_dense:
        started = time.perf_counter()
        embedding = index.embed(cache_dir(), version, lambda d, n: progress("embed windows", d, n))
        embedding["raw_windows_per_s"] = raw_embedding_rate(index)
        timings["embed_windows"] = time.perf_counter() - started
        query_vectors = index.embed_queries([q.question for q in questions])
    started = time.perf_counter()
    for n, q in enumerate(questions, start=1):
        bm25 = index.bm25(q.question) if need_bm25 else Ranked([], 0.0)
        dense = index.dense(query_vectors[n - 1]) if need_dense else Ranked([], 0.0)
        for arm, ranked in (
            ("bm25", bm25),
            ("dense", dense),
            ("hybrid-baseline", rrf([bm25.pages, dense.pages]) if need_dense else bm25),
        ):
            if arm in results:
                results[arm].rankings[q.id] = ranked.pages[:10]
                results[arm].top_scores[q.id] = ranked.top_score
        progress("baseline queries", n, len(questions))
    timings["baseline_queries"] = time.perf_counter() - started
    return results, embedding


def fast_arm(arm: Arm, fast: bool) -> Arm:
    """A fast run uses groups of its own, so a stack that holds the whole set does not leak in."""
    if not fast:
        return arm
    return replace(arm, group=arm.group.replace("pydocs-", "pydocs-fast-"))


def ingest_record_path(url: str, arm: Arm) -> Path:
    host = url.split("://", 1)[-1].strip("/").replace(":", "-").replace("/", "_")
    return cache_dir() / "ingest" / f"{host}-{arm.group}.json"


def run_product(
    name: str,
    access: ProductAccess,
    root: Path,
    pages: Sequence[str],
    questions: Sequence[Question],
    fast: bool,
    progress: Progress,
    timings: dict[str, float],
) -> ArmResult:
    arm = fast_arm(PRODUCT_ARMS[name], fast)
    result = ArmResult(name)
    client = ProductClient(access.url)
    try:
        record_path = ingest_record_path(access.url, arm)
        doc_pages: dict[str, str] = {}
        if access.ingest_key and arm.uploads:
            started = time.perf_counter()
            stats = ingest(
                client,
                access.ingest_key,
                root,
                pages,
                arm,
                on_progress=lambda d, n: progress(f"ingest {name}", d, n),
            )
            timings[f"ingest_{name}"] = time.perf_counter() - started
            doc_pages = stats.doc_pages
            if stats.indexed:
                save_ingest(record_path, stats, access.url)
                result.ingest = {**stats.summary(), "measured": "in this run"}
            else:
                result.ingest = _earlier_ingest(record_path, stats)
        else:
            earlier = load_ingest(record_path)
            doc_pages = dict(earlier.get("doc_pages", {})) if earlier else {}
            result.ingest = _earlier_ingest(record_path, None)
        key = access.query_keys[name]
        started = time.perf_counter()
        for n, q in enumerate(questions, start=1):
            t0 = time.perf_counter()
            try:
                body = client.search(
                    key, q.question, access.top_k, alpha=arm.alpha, rerank=arm.rerank
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 409 and arm.rerank:
                    result.error = "the gateway has no rerank-default alias (409)"
                    return result
                raise
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            result.rankings[q.id] = page_ranking(body.get("results", []), arm.prefix, doc_pages)[
                :10
            ]
            result.top_scores[q.id] = float(body.get("confidence", 0.0))
            result.statuses[q.id] = str(body.get("retrieval_status", "ok"))
            progress(f"search {name}", n, len(questions))
        timings[f"search_{name}"] = time.perf_counter() - started
    finally:
        client.close()
    return result


def _earlier_ingest(path: Path, stats: IngestStats | None) -> dict[str, Any]:
    earlier = load_ingest(path)
    out: dict[str, Any] = {"measured": "not in this run: every page was already indexed"}
    if stats is not None:
        out.update(stats.summary())
    if earlier:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(earlier["at"]))
        keep = ("indexed", "chunks", "seconds", "pages_per_s", "chunks_per_s", "redactions")
        out["earlier"] = {k: earlier.get(k) for k in keep} | {"at": at}
    return out


def run(
    *,
    arms: Sequence[str],
    fast: bool,
    access: ProductAccess | None,
    progress: Progress,
    questions_file: Path | None = None,
) -> RunResult:
    from benchmarks.python_docs.corpus import docs_root

    unknown = [a for a in arms if a not in ALL_ARMS]
    if unknown:
        raise ValueError(f"unknown arms {unknown}; choose from {', '.join(ALL_ARMS)}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    root = docs_root()
    questions, pages = select(fast, questions_file)
    version = docs_version(root)
    t0 = time.perf_counter()
    index = WindowIndex(load_pages(root, pages))
    timings["read_pages"] = time.perf_counter() - t0
    results, embedding = run_baselines(arms, index, questions, version, progress, timings)
    for name in arms:
        if name in PRODUCT_ARMS:
            if access is None:
                results[name] = ArmResult(name, error="no product URL/keys given")
                continue
            results[name] = run_product(
                name, access, root, pages, questions, fast, progress, timings
            )
    timings["total"] = time.perf_counter() - started
    return RunResult(
        fast=fast,
        pages=list(pages),
        questions=list(questions),
        arms={a: results[a] for a in arms},
        docs_version=version,
        timings_s=timings,
        environment={
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "product_url": access.url if access else None,
        },
        windows=len(index.windows),
        embedding=embedding,
    )


__all__ = ["ALL_ARMS", "BASELINE_ARMS", "METRICS", "ProductAccess", "RunResult", "run"]
