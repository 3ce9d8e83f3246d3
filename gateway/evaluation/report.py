"""Markdown and JSON reports, plus PNG plots, of one evaluation run."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from gateway.evaluation.metrics import mean
from gateway.evaluation.runner import EvalRun


def write_reports(run: EvalRun, out_dir: Path, gate_failures: list[str] | None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = run.summary()
    data: dict[str, Any] = {
        "summary": summary,
        "gate": {"failures": gate_failures} if gate_failures is not None else None,
        "retrieval": [asdict(r) for r in run.retrieval],
        "answers": [asdict(a) for a in run.answers],
    }
    json_path = out_dir / "eval.json"
    json_path.write_text(json.dumps(data, indent=2))
    md_path = out_dir / "eval.md"
    md_path.write_text(_markdown(run, summary, gate_failures))
    return [json_path, md_path, *_plots(run, out_dir)]


def _markdown(run: EvalRun, summary: dict[str, Any], gate_failures: list[str] | None) -> str:
    lines = ["# Holdfast evaluation", ""]
    if gate_failures is not None:
        lines += ["**Gate: " + ("PASSED**" if not gate_failures else "FAILED**"), ""]
        lines += [f"- {f}" for f in gate_failures] + ([""] if gate_failures else [])
    lines += [
        "## Retrieval (document level, top 10)",
        "",
        "| mode | hit@1 | hit@5 | recall@10 | MRR@10 | nDCG@10 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode, m in summary["retrieval"].items():
        lines.append(
            f"| {mode} | {m['hit@1']:.3f} | {m['hit@5']:.3f} | {m['recall@10']:.3f} "
            f"| {m['mrr@10']:.3f} | {m['ndcg@10']:.3f} |"
        )
    lines += [f"\n_{mode} not measured: {why}_" for mode, why in run.skipped_modes.items()]
    a = summary["answers"]
    lines += ["", "## Answers", "", f"- questions asked: {a['asked']}"]
    lines += [f"- refusal accuracy on unanswerables: {a['refusal_accuracy']}"]
    lines += [f"- answer key-phrase match: {a['answer_key_match']}"]
    lines += [f"- answerable questions refused: {a['wrongly_refused']}"]
    lines += [f"- answers given citing ≥1 passage: {a['citing_share']} of {a['answers_given']}"]
    lines += [
        "- share of answer sentences no passage supports (`unsupported_sentences`): "
        f"{a['unsupported_sentence_share']}"
    ]
    if a["judge_model"]:
        lines += [
            f"- faithfulness (LLM-as-judge, judge model {a['judge_model']}): {a['faithfulness']}"
        ]
    failures = [r for r in run.retrieval if r.mode == "hybrid" and r.metrics["hit@5"] == 0.0]
    lines += ["", "## Hybrid retrieval misses (no gold document in the top 5)", ""]
    lines += [
        f"- `{r.id}` ({r.type}): got {', '.join(r.ranking[:3]) or 'nothing'}" for r in failures
    ] or ["- none"]
    wrong = [x for x in run.answers if x.keys_matched is False or x.correct_refusal is False]
    lines += ["", "## Answer failures", ""]
    lines += [f"- `{x.id}` ({x.type}): {x.answer[:120]!r}" for x in wrong] or ["- none"]
    return "\n".join(lines) + "\n"


def _plots(run: EvalRun, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    paths = []
    modes = sorted({r.mode for r in run.retrieval})
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(
        [[r.metrics["ndcg@10"] for r in run.retrieval if r.mode == m] for m in modes],
        bins=10,
        range=(0, 1),
        label=modes,
    )
    ax.set_xlabel("nDCG@10 per question")
    ax.set_ylabel("questions")
    ax.legend()
    ax.set_title("Score distribution by retrieval mode")
    path = out_dir / "ndcg_distribution.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    paths.append(path)

    types = sorted({r.type for r in run.retrieval})
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(modes))
    for i, mode in enumerate(modes):
        values = [
            mean([r.metrics["ndcg@10"] for r in run.retrieval if r.mode == mode and r.type == t])
            for t in types
        ]
        ax.bar([x + i * width for x in range(len(types))], values, width, label=mode)
    ax.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(types))], types)
    ax.set_ylabel("mean nDCG@10")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("nDCG@10 by question type")
    path = out_dir / "ndcg_by_type.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    paths.append(path)
    return paths
