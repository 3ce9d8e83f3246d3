"""``holdfast eval``: golden questions against a running gateway; reports and a quality gate."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from gateway.cli.common import cli_settings, fail, gateway_base
from gateway.evaluation.gate import GateThresholds, check_gate
from gateway.evaluation.golden import load_golden
from gateway.evaluation.judge import judge_faithful
from gateway.evaluation.report import write_reports
from gateway.evaluation.runner import (
    ALL_MODES,
    EvalRun,
    GatewayClient,
    evaluate_answers,
    evaluate_retrieval,
    runnable_modes,
)
from gateway.settings import load_settings
from services.errors import HoldfastError

out = Console()
err = Console(stderr=True)


def run_eval(
    golden: Path,
    *,
    url: str,
    key: str,
    modes: list[str],
    answers: int,
    hybrid_alpha: float | None = None,
    judge_alias: str | None = None,
    show_progress: bool = True,
) -> EvalRun:
    """The whole evaluation; the CLI and the tests call this same function."""
    questions = load_golden(golden)
    client = GatewayClient(url, key)
    run = EvalRun(hybrid_alpha=hybrid_alpha)
    answerable = [q for q in questions if q.answerable]
    asked = _answer_sample(questions, answers)
    try:
        if answerable:
            modes, run.skipped_modes = runnable_modes(client, modes, answerable[0].question)
        with Progress(console=out, disable=not show_progress) as progress:
            task = progress.add_task("retrieval", total=len(answerable) * len(modes))
            run.retrieval = evaluate_retrieval(
                client,
                questions,
                modes,
                hybrid_alpha=hybrid_alpha,
                on_step=lambda: progress.advance(task),
            )
            task = progress.add_task("answers", total=len(asked))
            run.answers = evaluate_answers(client, asked, on_step=lambda: progress.advance(task))
    finally:
        client.close()
    if judge_alias:
        run.judge_model, run.answers = _judged(run, judge_alias)
    return run


def _answer_sample(questions: list, limit: int) -> list:  # type: ignore[type-arg]
    """All unanswerables (refusal accuracy needs them) plus answerables up to ``limit`` in all."""
    unanswerable = [q for q in questions if not q.answerable]
    answerable = [q for q in questions if q.answerable]
    room = max(0, limit - len(unanswerable)) if limit >= 0 else len(answerable)
    return unanswerable + answerable[:room]


def _judged(run: EvalRun, alias: str) -> tuple[str, list]:  # type: ignore[type-arg]
    from gateway.container import build_components

    components = build_components(load_settings())
    router = components.router
    router.warm_up()
    model = str(components.models.entry(alias).litellm_params.get("model", alias))
    judged = [
        dataclasses.replace(a, faithful=judge_faithful(router, alias, a.answer, a.passages))
        if a.keys_matched is not None and not a.refused
        else a
        for a in run.answers
    ]
    return model, judged


def _gate_thresholds(path: Path) -> GateThresholds:
    """The gate, read before the run: a broken file would otherwise fail only after minutes of
    questions, and without writing the reports."""
    try:
        return GateThresholds.from_file(path)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        fail(f"--gate {path}: {where}: {first['msg']}; fix the thresholds file", code=2)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        fail(f"--gate {path}: cannot read it as JSON ({reason}); fix the thresholds file", code=2)


def eval_command(
    golden: Annotated[Path, typer.Option(help="Golden set, one JSON object a line.", exists=True)],
    url: Annotated[str | None, typer.Option(help="Gateway URL (default: from settings).")] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="HOLDFAST_API_KEY", help="API key (default: the admin key file)."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="hybrid | bm25 | vector | hybrid+rerank | all (all skips hybrid+rerank, "
            "saying why, when the gateway has no rerank-default alias)"
        ),
    ] = "all",
    answers: Annotated[int, typer.Option(help="Questions to ask for answers (-1: all).")] = -1,
    hybrid_alpha: Annotated[float | None, typer.Option(help="Override the hybrid alpha.")] = None,
    judge_alias: Annotated[str | None, typer.Option(help="Alias judging faithfulness.")] = None,
    gate: Annotated[
        Path | None,
        typer.Option(help="Thresholds JSON; fail if unmet.", exists=True, dir_okay=False),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("eval-report"),
) -> None:
    """Measure retrieval and answer quality on a golden set; optionally gate on thresholds."""
    settings = cli_settings()
    base = gateway_base(url, settings)
    thresholds = _gate_thresholds(gate) if gate else None  # a bad file fails now, not after the run
    if key is None:
        if not settings.admin_key_file.exists():
            err.print("[red]error:[/] no --key and no admin key file; run `holdfast up` first")
            raise typer.Exit(1)
        key = settings.admin_key_file.read_text().strip()
    modes = list(ALL_MODES) if mode == "all" else [mode]
    if any(m not in ALL_MODES for m in modes):
        err.print(f"[red]error:[/] --mode must be one of {', '.join(ALL_MODES)} or all")
        raise typer.Exit(2)
    try:
        run = run_eval(
            golden,
            url=base,
            key=key,
            modes=modes,
            answers=answers,
            hybrid_alpha=hybrid_alpha,
            judge_alias=judge_alias,
        )
    except HoldfastError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    summary = run.summary()
    failures = check_gate(summary, thresholds) if thresholds is not None else None
    paths = write_reports(run, out_dir, failures)
    table = Table("mode", "hit@1", "hit@5", "recall@10", "MRR@10", "nDCG@10")
    for name, m in summary["retrieval"].items():
        table.add_row(
            name, *(f"{m[k]:.3f}" for k in ("hit@1", "hit@5", "recall@10", "mrr@10", "ndcg@10"))
        )
    out.print(table)
    for skipped, reason in run.skipped_modes.items():
        out.print(f"[yellow]{skipped} not measured:[/] {reason}")
    out.print(f"answers: {summary['answers']}")
    out.print(f"reports: {', '.join(str(p) for p in paths)}")
    if failures:
        for failure in failures:
            err.print(f"[red]gate failed:[/] {failure}")
        raise typer.Exit(1)
    if failures is not None:
        out.print("[green]gate passed[/]")
