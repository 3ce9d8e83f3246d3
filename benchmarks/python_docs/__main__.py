"""``python -m benchmarks.python_docs``: verify the question set, or run the eval and report.

    .venv/bin/python -m benchmarks.python_docs verify
    .venv/bin/python -m benchmarks.python_docs run [--fast] [--arms bm25,hybrid-baseline,dense]
    .venv/bin/python -m benchmarks.python_docs run --home /tmp/hf-evals --url http://127.0.0.1:28807
    .venv/bin/python -m benchmarks.python_docs run --start-stack --home /tmp/hf-ev --port-base 28800
    .venv/bin/python -m benchmarks.python_docs run --fast --arms product --start-stack \
        --home /tmp/hf-ans --port-base 29500 \
        --chat-models gemma3-270m,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b \
        --answers-sample 30 --extra-unanswerable 6

The product arms need a running stack: ``--url`` plus either ``--home`` (its HOLDFAST_HOME: the
admin key is read from there and query keys are minted with ``holdfast keys create``) or
``--key`` (an admin or ingest key) with ``--query-key ARM=KEY`` for each product arm.
``--start-stack`` starts one with ``holdfast up`` under ``--home`` on ports from ``--port-base``
and stops it at the end. The report goes to benchmarks/reports/python-docs-<UTC>.{md,json}.

``--chat-models`` adds answers through ``POST /v1/query`` for each named packaged chat model,
switching ``chat-default`` in ``<home>/models.yaml`` between them (see answers.py; a started
stack imports them through HOLDFAST_OLLAMA__EXTRA_MODELS).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from benchmarks.python_docs import report, verify
from benchmarks.python_docs.answers import (
    packaged_model,
    reranker_on,
    run_answers,
    sample_questions,
)
from benchmarks.python_docs.product import (
    PRODUCT_ARMS,
    admin_key_of,
    create_query_key,
    holdfast_command,
)
from benchmarks.python_docs.questions import load_questions
from benchmarks.python_docs.runner import ALL_ARMS, ProductAccess, fast_arm, run, select

console = Console(stderr=True)


def stack_env(home: Path, port_base: int) -> dict[str, str]:
    """Environment for ``holdfast`` on a stack of one's own (ports as in the test conftest)."""
    ports = {
        "HOLDFAST_WEAVIATE__HTTP_PORT": 0,
        "HOLDFAST_WEAVIATE__GRPC_PORT": 1,
        "HOLDFAST_WEAVIATE__GOSSIP_PORT": 2,
        "HOLDFAST_WEAVIATE__DATA_PORT": 3,
        "HOLDFAST_WEAVIATE__RAFT_PORT": 4,
        "HOLDFAST_WEAVIATE__RAFT_RPC_PORT": 5,
        "HOLDFAST_OLLAMA__PORT": 6,
        "HOLDFAST_GATEWAY__PORT": 7,
    }
    env = {**os.environ, "HOLDFAST_HOME": str(home)}
    env.update({k: str(port_base + off) for k, off in ports.items()})
    return env


def product_access(args: argparse.Namespace, arms: list[str]) -> ProductAccess | None:
    wanted = [a for a in arms if a in PRODUCT_ARMS]
    if not wanted:
        return None
    if not args.url:
        raise SystemExit("product arms need --url (or --start-stack)")
    command = args.holdfast.split() if args.holdfast else holdfast_command()
    given = dict(pair.split("=", 1) for pair in args.query_key)
    keys: dict[str, str] = {}
    for name in wanted:
        if name in given:
            keys[name] = given[name]
        elif args.home:
            group = fast_arm(PRODUCT_ARMS[name], args.fast).group
            keys[name] = create_query_key(args.home, f"eval-{group}", group, command)
        else:
            raise SystemExit(f"no query key for {name}: give --query-key {name}=KEY or --home")
    ingest_key = args.key or (admin_key_of(args.home) if args.home else None)
    if args.no_ingest:
        ingest_key = None
    return ProductAccess(url=args.url, ingest_key=ingest_key, query_keys=keys, top_k=args.top_k)


def cmd_run(args: argparse.Namespace) -> int:
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ALL_ARMS]
    if bad:
        raise SystemExit(f"unknown arms {bad}; choose from {', '.join(ALL_ARMS)}")
    started_stack = False
    command = args.holdfast.split() if args.holdfast else holdfast_command()
    chat_models = [m.strip() for m in args.chat_models.split(",") if m.strip()]
    if chat_models and ("product" not in arms or not args.home):
        raise SystemExit("--chat-models needs the product arm and --home (models.yaml, admin key)")
    if args.start_stack:
        if not args.home:
            raise SystemExit("--start-stack needs --home")
        env = stack_env(args.home, args.port_base)
        if chat_models:
            packaged = list(dict.fromkeys(packaged_model(m) for m in chat_models))
            env["HOLDFAST_OLLAMA__EXTRA_MODELS"] = json.dumps(packaged)
        console.print(f"starting a stack under {args.home} (holdfast up)…")
        subprocess.run([*command, "up"], env=env, check=True, stdout=subprocess.DEVNULL)
        started_stack = True
        args.url = args.url or f"http://127.0.0.1:{args.port_base + 7}"
    try:
        access = product_access(args, arms)
        with Progress(
            TextColumn("{task.description:<24}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bars:
            tasks: dict[str, TaskID] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bars.add_task(name, total=total)
                bars.update(tasks[name], completed=done, total=total)

            reranked = any(PRODUCT_ARMS[a].rerank for a in arms if a in PRODUCT_ARMS)
            with (
                reranker_on(access.url, admin_key_of(args.home), args.home / "models.yaml")
                if reranked and access is not None and args.home
                else nullcontext()
            ):
                result = run(arms=arms, fast=args.fast, access=access, progress=progress)
            if chat_models and access is not None:
                run_questions, _ = select(args.fast)
                questions = sample_questions(
                    run_questions,
                    load_questions(),
                    answerable=args.answers_sample,
                    extra_unanswerable=args.extra_unanswerable,
                    seed=args.answers_seed,
                )
                started = time.perf_counter()
                result.answers = run_answers(
                    url=access.url,
                    admin_key=admin_key_of(args.home),
                    query_key=access.query_keys["product"],
                    models_file=args.home / "models.yaml",
                    chat_models=chat_models,
                    questions=questions,
                    progress=progress,
                    budget_s=args.answers_budget_s,
                    seed=args.answers_seed,
                )
                result.timings_s["answers"] = time.perf_counter() - started
                result.answers_sample = {
                    "answerable": args.answers_sample,
                    "extra_unanswerable": args.extra_unanswerable,
                    "seed": args.answers_seed,
                    "question_ids": [q.id for q in questions],
                    "budget_s": args.answers_budget_s,
                }
        md, js = report.write(result, args.label, args.out)
    finally:
        if started_stack and not args.keep_stack:
            env = stack_env(args.home, args.port_base)
            subprocess.run([*command, "down"], env=env, check=False)
    console.print(report.as_markdown(result, args.label).split("## Margins")[0])
    console.print(f"report: {md}\n        {js}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.python_docs", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("verify", help="check the question set against the docs")
    r = sub.add_parser("run", help="run the eval and write a report")
    r.add_argument("--fast", action="store_true", help="the fast subset over its page list")
    r.add_argument("--arms", default=",".join(ALL_ARMS), help=f"comma list of {ALL_ARMS}")
    r.add_argument("--url", help="the gateway, e.g. http://127.0.0.1:28807")
    r.add_argument("--key", help="an admin or ingest key for uploading (else read from --home)")
    r.add_argument("--home", type=Path, help="the stack's HOLDFAST_HOME (admin key, query keys)")
    r.add_argument("--query-key", action="append", default=[], metavar="ARM=KEY")
    r.add_argument("--no-ingest", action="store_true", help="the pages are indexed already")
    r.add_argument("--top-k", type=int, default=20, help="top_k of each /v1/search call")
    r.add_argument("--holdfast", help="the holdfast CLI command (default: the venv's)")
    r.add_argument("--start-stack", action="store_true", help="holdfast up under --home first")
    r.add_argument("--keep-stack", action="store_true", help="leave a started stack running")
    r.add_argument("--port-base", type=int, default=28800, help="ports of a started stack")
    r.add_argument("--label", default="current product", help="what was measured, for the report")
    r.add_argument(
        "--chat-models",
        default="",
        help="comma list of packaged chat models to answer with through /v1/query "
        "(gemma3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b); a name ending in +rerank "
        "is that model with the opt-in CPU reranker on",
    )
    r.add_argument(
        "--answers-sample",
        type=int,
        default=None,
        help="answer a seeded sample of this many answerable questions (default: all)",
    )
    r.add_argument(
        "--extra-unanswerable",
        type=int,
        default=0,
        help="add this many unanswerable questions from outside the run's set (seeded)",
    )
    r.add_argument("--answers-seed", type=int, default=15, help="seed of the answer sample")
    r.add_argument(
        "--answers-budget-s",
        type=float,
        default=None,
        help="stop asking new questions after this many seconds (every model has answered the "
        "same ones; the report counts them)",
    )
    r.add_argument("--out", type=Path, default=report.REPORTS, help="report folder")
    table = sub.add_parser("answers-table", help="the answers table of a report's JSON, again")
    table.add_argument("report_json", type=Path)
    args = parser.parse_args(argv)
    if args.command == "verify":
        return verify.main([])
    if args.command == "answers-table":
        print("\n".join(report.answer_lines_from_json(args.report_json)))
        return 0
    return cmd_run(args)


if __name__ == "__main__":
    sys.exit(main())
