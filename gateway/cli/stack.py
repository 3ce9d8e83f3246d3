"""``holdfast up|down|status|serve|demo``: the local stack on one machine, or the gateway alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from gateway.cli.audit import record_key_action_or_warn
from gateway.cli.common import cli_settings, err, out
from gateway.cli.ingest import ingest
from gateway.cli.query import ask
from gateway.settings import Settings

SAMPLE_CORPUS = Path(__file__).resolve().parents[1] / "sample_corpus"
DEMO_QUESTION = "How many days of annual leave do employees get, and how do they request it?"
DEMO_GROUP = "handbook"
# The admin key `up` creates reads this group; the sample corpus carries it too, so that
# `holdfast query "…"` (which uses the admin key) answers from the handbook after the demo.
ADMIN_GROUP = "admin"


def run_up(settings: Settings) -> None:
    """Start the stack, showing each step; on failure, the component's log tail and a hint."""
    from gateway.local import stack
    from gateway.local.processes import StartupError

    try:
        with out.status("starting…") as status:
            result = stack.up(settings, on_step=lambda s: status.update(f"starting {s}…"))
    except StartupError as exc:
        err.print(f"[bold red]{exc.component} failed to start:[/] {exc.reason}", highlight=False)
        if exc.log_tail:
            err.print(
                f"[dim]--- last lines of {exc.component}'s log ---[/]\n{exc.log_tail}",
                highlight=False,
                markup=False,
            )
        if exc.hint:
            err.print(f"hint: {exc.hint}", highlight=False)
        raise typer.Exit(1) from exc
    for proc in result.started:
        out.print(f"[green]✓[/] {proc.name} (pid {proc.pid})")
    if result.model_imported:
        out.print(f"[green]✓[/] imported chat model {settings.ollama.chat_model}")
    url = settings.gateway.base_url
    out.print(f"\nHoldfast is up at [bold]{url}[/]  (state in {settings.home})")
    if result.admin_key:
        out.print(
            f"\nAdmin API key (shown once; also saved to {settings.admin_key_file}, mode 0600):\n"
            f"  [bold]{result.admin_key}[/]"
        )
        record_key_action_or_warn(settings, "key.created", name="admin", via="holdfast up")
    out.print(
        "\nTry it:\n"
        f'  curl -s {url}/v1/query -H "Authorization: Bearer $(cat {settings.admin_key_file})" \\\n'
        "       -H 'Content-Type: application/json' -d '{\"question\": \"What is Holdfast?\"}'",
        highlight=False,
    )


def up() -> None:
    """Start Weaviate, Ollama (importing the packaged chat model) and the gateway on loopback."""
    run_up(cli_settings())


def down() -> None:
    """Stop exactly the processes `holdfast up` started (by their recorded PIDs)."""
    from gateway.local import stack

    for name, was_running in stack.down(cli_settings()).items():
        out.print(f"{name}: {'stopped' if was_running else 'not running'}")


def status() -> None:
    """Show each component: its process and whether it answers."""
    from gateway.local import stack
    from gateway.local.cpu_features import describe, llm_cpu_features

    settings = cli_settings()
    states = stack.process_states(settings)
    table = Table("component", "process", "pid", "health")
    ready: dict[str, dict[str, object]] = {}
    try:
        response = httpx.get(f"{settings.gateway.base_url}/readyz", timeout=5.0)
        ready = response.json().get("checks", {})
    except (httpx.HTTPError, ValueError):
        pass
    health_of = {"weaviate": "weaviate", "ollama": "llm", "gateway": None}
    for name, state in states.items():
        key = health_of[name]
        if key is None:
            health = "ok" if ready else "not answering"
        else:
            check = ready.get(key)
            health = ("ok" if check and check.get("ok") else "down") if ready else "unknown"
        table.add_row(
            name, "running" if state.running else "stopped", str(state.pid or "-"), health
        )
    out.print(table)
    features = llm_cpu_features(settings.logs_dir / "ollama.log")
    out.print(f"LLM server CPU features: {describe(features)}", highlight=False)


def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: gateway.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port).")] = None,
) -> None:
    """Run only the gateway in the foreground (containers, systemd); services are external."""
    import uvicorn

    from gateway.main import create_default_app as create_app

    settings = cli_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.gateway.host,
        port=port or settings.gateway.port,
        access_log=False,
        loop="uvloop",  # C loop and parser, as `holdfast up` runs it
        http="httptools",
    )


def demo(
    question: Annotated[str, typer.Option(help="The question to ask.")] = DEMO_QUESTION,
) -> None:
    """Start the stack, index the bundled sample handbook, and ask it one question."""
    from gateway.security.keys import KeyStore

    settings = cli_settings()
    run_up(settings)
    out.rule("ingesting the sample corpus")
    groups = f"{DEMO_GROUP},{ADMIN_GROUP}"
    ingest([SAMPLE_CORPUS], groups=groups, recursive=False, redact=True, key=None, url=None)
    _, key = KeyStore(settings.keys_db).create("demo", groups=[DEMO_GROUP], roles=["query"])
    out.rule("asking")
    out.print(f"Q: {question}", highlight=False)
    ask(question, key=key, url=None, as_json=False)
    out.print(
        f"\nThe sample handbook is readable by the groups {DEMO_GROUP} and {ADMIN_GROUP} "
        "(the admin key's). Ask it more:\n"
        '  holdfast query "How much notice does shared parental leave need?"',
        highlight=False,
    )
