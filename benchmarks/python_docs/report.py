"""The run's report: Markdown for people, JSON for tools, both under benchmarks/reports/."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.python_docs.metrics import METRICS
from benchmarks.python_docs.questions import STYLES
from benchmarks.python_docs.runner import BASELINE_ARMS, RunResult

REPORTS = Path(__file__).resolve().parents[1] / "reports"
HEADLINE = ("ndcg@10", "hit@5")


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def as_json(run: RunResult, label: str) -> dict[str, Any]:
    arms: dict[str, Any] = {}
    for name, arm in run.arms.items():
        arms[name] = {
            "error": arm.error,
            "summary": None if arm.error else run.summary(name),
            "by_style": None if arm.error else run.by_style(name),
            "ingest": arm.ingest,
        }
    per_question = []
    for q in run.questions:
        row: dict[str, Any] = {
            "id": q.id,
            "style": q.style,
            "answerable": q.answerable,
            "gold_pages": q.gold_pages,
            "arms": {},
        }
        for name, arm in run.arms.items():
            if q.id not in arm.rankings:
                continue
            entry: dict[str, Any] = {
                "ranking": arm.rankings[q.id],
                "top_score": arm.top_scores.get(q.id),
            }
            if q.id in arm.statuses:
                entry["retrieval_status"] = arm.statuses[q.id]
            if q.answerable:
                entry["metrics"] = run.scored(name).get(q.id)
            row["arms"][name] = entry
        per_question.append(row)
    return {
        "label": label,
        "harness_commit": _git_commit(),
        "fast": run.fast,
        "docs_version": run.docs_version,
        "pages": len(run.pages),
        "windows": run.windows,
        "questions": len(run.questions),
        "answerable": sum(q.answerable for q in run.questions),
        "embedding": run.embedding,
        "timings_s": run.timings_s,
        "environment": run.environment,
        "arms": arms,
        "per_question": per_question,
        "answers": {name: arm.as_json() for name, arm in run.answers.items()},
        "answers_sample": run.answers_sample,
    }


def _margins(run: RunResult, ok: list[str]) -> list[str]:
    products = [a for a in ok if a not in BASELINE_ARMS]
    baselines = [a for a in ok if a in BASELINE_ARMS]
    if not products or not baselines:
        return []
    lines = [
        "## Margins of the product over each baseline",
        "",
        "| product arm | baseline | " + " | ".join(f"Δ {m}" for m in METRICS) + " |",
        "| --- | --- | " + " | ".join("---" for _ in METRICS) + " |",
    ]
    for p in products:
        ps = run.summary(p)
        for b in baselines:
            bs = run.summary(b)
            cells = " | ".join(_signed(ps[m] - bs[m]) for m in METRICS)
            lines.append(f"| {p} | {b} | {cells} |")
    lines.append("")
    return lines


def _ingest_lines(run: RunResult, ok: list[str]) -> list[str]:
    rows = [(a, run.arms[a].ingest) for a in ok if run.arms[a].ingest]
    if not rows:
        return []
    raw = run.embedding.get("raw_windows_per_s")
    lines = [
        "## Product ingestion",
        "",
        "| arm | when | pages indexed | chunks | seconds | pages/s | chunks/s "
        "| chunks/s ÷ raw MiniLM windows/s | redactions |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, info in rows:
        assert info is not None
        src = info if info.get("measured") == "in this run" else info.get("earlier") or {}
        when = "this run" if src is info else f"earlier ({src.get('at', '?')})" if src else "—"
        cps = src.get("chunks_per_s")
        ratio = _f(cps / raw, 2) if cps and raw else "—"
        red = ", ".join(f"{k} {v}" for k, v in sorted((src.get("redactions") or {}).items()))
        lines.append(
            f"| {name} | {when} | {src.get('indexed', '—')} | {src.get('chunks', '—')} "
            f"| {_f(src.get('seconds'), 0)} | {_f(src.get('pages_per_s'), 2)} "
            f"| {_f(cps, 1)} | {ratio} | {red or '—'} |"
        )
    if raw:
        lines += [
            "",
            f"Raw MiniLM embedding on this machine during the run: {raw:.1f} windows/s "
            "(256 windows of 200 words, batch 64). The product embeds shorter chunks, so the "
            "ratio is a reference, not a like-for-like efficiency.",
        ]
    lines.append("")
    return lines


def as_markdown(run: RunResult, label: str) -> str:
    ok = [a for a, r in run.arms.items() if not r.error]
    answerable = sum(q.answerable for q in run.questions)
    load = ", ".join(f"{x:.1f}" for x in run.environment.get("load_average", ()))
    lines = [
        f"# Python-docs retrieval eval{' (fast subset)' if run.fast else ''}: {label}",
        "",
        f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, harness commit {_git_commit()}, "
        f"docs {run.docs_version}",
        f"- {len(run.pages)} pages, {run.windows} baseline windows (200 words, 50 overlap), "
        f"{len(run.questions)} questions ({answerable} answerable, "
        f"{len(run.questions) - answerable} unanswerable)",
        f"- product: {run.environment.get('product_url') or 'not run'}; "
        f"{run.environment.get('cpus')} CPUs, load average at the end {load}",
        "- page level; retrieval metrics over answerable questions; nDCG graded (gain 2^rel-1); "
        "hit/MRR/recall count every gold page",
        "",
        "| arm | nDCG@10 | MRR@10 | hit@1 | hit@5 | recall@10 | unanswerable AUROC "
        "| refused: unanswerable / answerable | p50 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in run.arms:
        if name not in ok:
            lines.append(f"| {name} | not run: {run.arms[name].error} |||||||| ")
            continue
        s = run.summary(name)
        refused = (
            f"{_f(s['refused_unanswerable'], 2)} / {_f(s['refused_answerable'], 2)}"
            if "refused_unanswerable" in s
            else "—"
        )
        cells = " | ".join(_f(s[m]) for m in METRICS)
        lines.append(
            f"| {name} | {cells} | {_f(s['unanswerable_auroc'], 2)} | {refused} "
            f"| {_f(s.get('latency_p50_ms'), 0)} |"
        )
    lines += [
        "",
        "Unanswerable AUROC: how well the arm's top score separates answerable from unanswerable "
        "questions (0.5 = not at all). Refused: the product's `retrieval_status` was not `ok`.",
        "",
    ]
    lines += _margins(run, ok)
    styles = [s for s in STYLES if s != "unanswerable"]
    lines += [
        "## nDCG@10 by question style",
        "",
        "| style | n | " + " | ".join(ok) + " |",
        "| --- | --- | " + " | ".join("---" for _ in ok) + " |",
    ]
    for style in styles:
        per = {a: run.by_style(a).get(style) for a in ok}
        n = next((int(v["n"]) for v in per.values() if v), 0)
        if not n:
            continue
        cells = " | ".join(_f(v["ndcg@10"]) if v else "—" for v in per.values())
        lines.append(f"| {style} | {n} | {cells} |")
    lines.append("")
    lines += answer_lines(run)
    lines += _ingest_lines(run, ok)
    lines += _misses(run, ok)
    lines += [
        "## Runtime",
        "",
        " · ".join(f"{k} {v:.0f} s" for k, v in run.timings_s.items()),
        "",
    ]
    return "\n".join(lines)


def _ratio(n: int, total: int) -> str:
    return f"{n}/{total} ({n / total:.2f})" if total else "—"


def _seconds(ms: float | None) -> str:
    return "—" if ms is None else f"{ms / 1000:.1f} s"


def answer_lines_from_json(path: Path) -> list[str]:
    """The answers table recomputed from a report's JSON records (with this code's summary)."""
    from benchmarks.python_docs.answers import AnswerArm

    body = json.loads(path.read_text(encoding="utf-8"))
    run = RunResult(
        fast=bool(body.get("fast")),
        pages=[],
        questions=[],
        arms={},
        docs_version=str(body.get("docs_version", "")),
        timings_s={},
        environment={},
    )
    run.answers = {n: AnswerArm.from_json(a) for n, a in body.get("answers", {}).items()}
    run.answers_sample = body.get("answers_sample", {})
    return answer_lines(run)


def answer_lines(run: RunResult) -> list[str]:
    """The answers table: one row per chat model, all asked the same questions in this run."""
    if not run.answers:
        return []
    sample = run.answers_sample
    asked = max((len(a.records) for a in run.answers.values()), default=0)
    cut = (
        f" The time budget of {sample['budget_s']:.0f} s stopped the run after {asked} of them."
        if sample.get("budget_s") and asked < len(sample.get("question_ids", []))
        else ""
    )
    lines = [
        "## Answers through POST /v1/query, per chat model",
        "",
        f"Questions: {len(sample.get('question_ids', []))} "
        f"(seeded sample, seed {sample.get('seed')}: "
        f"{sample.get('answerable') or 'all'} answerable of the run, every unanswerable of the "
        f"run and {sample.get('extra_unanswerable', 0)} more unanswerable from the whole set), "
        "asked in a seeded order; each question goes to every model in turn on the same stack "
        f"(chat-default switched by POST /admin/reload).{cut}",
        "",
        "| chat model | answers holding every key | unanswerables refused "
        "| answerables refused | answers citing ≥1 passage | unsupported sentences "
        "| answers with an unsupported sentence | p50 latency | p95 latency | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, arm in run.answers.items():
        if arm.error:
            lines.append(f"| {name} | not run: {arm.error} |||||||||")
            continue
        s = arm.summary()
        lines.append(
            f"| {name} | {_ratio(s['keys_correct'], s['answerable'])} "
            f"| {_ratio(s['refused_unanswerable'], s['unanswerable'])} "
            f"| {_ratio(s['refused_answerable'], s['answerable'])} "
            f"| {_ratio(s['answers_citing'], s['answers_given'])} "
            f"| {_ratio(s.get('unsupported_sentences', 0), s.get('answer_sentences', 0))} "
            f"| {_ratio(s.get('answers_with_unsupported', 0), s['answers_given'])} "
            f"| {_seconds(s['latency_p50_ms'])} | {_seconds(s['latency_p95_ms'])} "
            f"| {s['errors']} |"
        )
    lines += [
        "",
        "Holding every key: the answer is not a refusal and matches every answer-key entry of the "
        "question (case-insensitive literal or regex). Refused: `refused` in the response "
        "(retrieval too weak, or the model declined). Citing: of the answers given to answerable "
        "questions, those with a citation marked `cited` (a sentence attributed to the passage: "
        "its `[n]` marker, shared words or embedding similarity). Unsupported: of the sentences "
        "of those answers, the ones listed in `unsupported_sentences` (a number, name, "
        "identifier or setting in no passage given to the model, or no passage to attribute); "
        "refused answers (`unsupported_policy: refuse`) are not among them. Latency: the whole "
        "request, retrieval and redaction included, errors (504 after the chat timeout) too; "
        "errored questions count as not correct and not refused.",
        "",
    ]
    return lines


def _misses(run: RunResult, ok: list[str]) -> list[str]:
    products = [a for a in ok if a not in BASELINE_ARMS]
    if not products or "bm25" not in ok:
        return []
    product = products[0]
    mine, base = run.scored(product), run.scored("bm25")
    worse = sorted(
        (q for q in run.questions if q.id in mine and q.id in base),
        key=lambda q: mine[q.id]["ndcg@10"] - base[q.id]["ndcg@10"],
    )[:15]
    lines = [
        f"## Where {product} loses most against bm25",
        "",
        f"| id | question | {product} nDCG | bm25 nDCG | {product} top 3 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for q in worse:
        delta = mine[q.id]["ndcg@10"] - base[q.id]["ndcg@10"]
        if delta >= 0:
            break
        top = ", ".join(run.arms[product].rankings[q.id][:3]) or "(nothing)"
        text = q.question.replace("|", "\\|")
        lines.append(
            f"| {q.id} | {text} | {mine[q.id]['ndcg@10']:.2f} | {base[q.id]['ndcg@10']:.2f} "
            f"| {top} |"
        )
    lines.append("")
    return lines


def write(run: RunResult, label: str, out_dir: Path = REPORTS) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"python-docs{'-fast' if run.fast else ''}-{stamp}"
    md, js = out_dir / f"{stem}.md", out_dir / f"{stem}.json"
    md.write_text(as_markdown(run, label), encoding="utf-8")
    js.write_text(json.dumps(as_json(run, label), indent=1), encoding="utf-8")
    return md, js
