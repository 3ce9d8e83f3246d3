"""``holdfast verify-access``: probe a running gateway with two or more keys; exit 1 on a leak."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Annotated

import httpx
import typer
from rich.progress import Progress
from rich.table import Table

from gateway.cli.common import checked_url, cli_settings, err, fail, out
from gateway.probes.client import ProbeClient, RefusedKeyError
from gateway.probes.engine import run_probes
from gateway.probes.records import Caller, ProbeReport

HELP = "\n\n".join(
    [
        "Try a running gateway as an attacker holding ordinary keys would, after setting up "
        "groups. Give two or more API keys of different groups: --key A --key B.",
        "For each key it lists what the key may read (GET /v1/documents) and reads a few "
        "passages of every document through a key that may; then it sends seeded random probes "
        "as the other keys: /v1/search (also with filters on foreign ids and titles), /v1/query "
        "and /v1/chat/completions (plain and streamed), GET and DELETE /v1/documents/{id} and "
        "GET /v1/jobs/{id} with foreign ids (answered exactly like an id that does not exist, "
        "and DELETE changes nothing: every key lists again at the end), failing requests "
        "(their problem+json bodies) and /metrics.",
        "A leak is any id, title, source or passage text of a document a key may not read, in "
        "any response. Keys that share a group may read each other's documents: no leak.",
        "Prints a table of surfaces, probes tried and leaks. Exit 0: no leak found; 1: a leak "
        "(each is listed); 2: bad input, e.g. a key the gateway refused (it says which). Answers "
        "take seconds each on a CPU model, so most probes go to the fast surfaces.",
    ]
)


def callers_of(keys: Sequence[str]) -> list[Caller]:
    """``--key`` values as callers labelled ``#1``, ``#2``... (a key is never printed)."""
    cleaned = [k.strip() for k in keys]
    if len(cleaned) < 2:
        raise ValueError("give at least two --key options (keys of different groups)")
    for i, key in enumerate(cleaned, 1):
        if not key:
            raise ValueError(f"--key #{i} is empty")
    if len(set(cleaned)) < len(cleaned):
        first = next(i for i, k in enumerate(cleaned, 1) if cleaned.count(k) > 1)
        raise ValueError(f"--key #{first} is given twice; give keys of different principals")
    return [Caller(f"#{i}", key) for i, key in enumerate(cleaned, 1)]


def exit_code(report: ProbeReport) -> int:
    return 1 if report.leaks else 0


def report_table(report: ProbeReport) -> Table:
    table = Table("surface", "probes", "leaks", title=f"verify-access (seed {report.seed})")
    for surface, probes, leaks in report.table_rows():
        style = "red" if leaks else ""
        table.add_row(surface, str(probes), str(leaks), style=style)
    table.add_row("total", str(report.total), str(len(report.leaks)), style="bold")
    return table


def verify_access_command(
    key: Annotated[
        list[str],
        typer.Option("--key", help="An API key to probe with; repeat for every key (2 or more)."),
    ],
    url: Annotated[str | None, typer.Option(help="Gateway URL (default: from settings).")] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the random probes (default: random, printed).")
    ] = None,
    probes: Annotated[
        int, typer.Option(min=1, max=100_000, help="Random probes to send after discovery.")
    ] = 200,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds one request may take.")] = 300.0,
) -> None:
    try:
        callers = callers_of(key)
        base = checked_url(url) if url else cli_settings().gateway.base_url
    except ValueError as exc:
        fail(str(exc), code=2)
    seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
    out.print(f"probing {base} with {len(callers)} keys, {probes} probes, seed {seed}")
    try:
        with (
            ProbeClient(base, timeout_s=timeout) as client,
            Progress(console=err, transient=True) as progress,
        ):
            task = progress.add_task("probes", total=probes)
            report = run_probes(
                client,
                callers,
                seed=seed,
                probes=probes,
                on_probe=lambda _: progress.advance(task),
            )
    except RefusedKeyError as exc:
        fail(str(exc), code=2)
    except httpx.HTTPError as exc:
        fail(f"cannot talk to {base}: {type(exc).__name__}: {exc}", code=2)
    out.print(report_table(report))
    out.print(
        f"{report.documents} documents, {report.foreign_pairs} (key, foreign document) pairs; "
        + "; ".join(report.notes[-1:]),
        highlight=False,
    )
    if report.leaks:
        err.print(report.failure_text(), highlight=False, markup=False)
        raise typer.Exit(exit_code(report))
    if report.foreign_pairs == 0:
        out.print(
            "[yellow]note:[/] every key may read every listed document: nothing was foreign to "
            "probe for; give keys of different groups"
        )
    out.print("[green]no leaks found[/]")


verify_access_command.__doc__ = HELP
