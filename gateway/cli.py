"""``holdfast``: run the local stack, manage keys, ingest, ask. The CLI is a composition root."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from gateway.cli_bundle import bundle_app
from gateway.cli_eval import eval_command
from gateway.cli_models import models_app
from gateway.offline import enforce_offline_env
from gateway.settings import Settings, config_path, load_settings
from services.errors import HoldfastError

SAMPLE_CORPUS = Path(__file__).parent / "sample_corpus"
DEMO_QUESTION = "How many days of annual leave do employees get, and how do they request it?"
DEMO_GROUP = "handbook"

app = typer.Typer(
    help="Holdfast: an on-premise RAG gateway. Start the local stack with `holdfast up`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
config_app = typer.Typer(help="Check configuration files.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.command("eval")(eval_command)
app.add_typer(models_app, name="models")
app.add_typer(bundle_app, name="bundle")
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    enforce_offline_env()
    try:
        return load_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        _fail(f"invalid setting {where}: {first['msg']} (file {config_path()}, or HOLDFAST_* env)")
    raise AssertionError("unreachable")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _run_up(settings: Settings) -> None:
    from gateway import stack
    from gateway.processes import StartupError

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
    out.print(
        "\nTry it:\n"
        f'  curl -s {url}/v1/query -H "Authorization: Bearer $(cat {settings.admin_key_file})" \\\n'
        "       -H 'Content-Type: application/json' -d '{\"question\": \"What is Holdfast?\"}'",
        highlight=False,
    )


@app.command()
def up() -> None:
    """Start Weaviate, Ollama (importing the packaged chat model) and the gateway on loopback."""
    _run_up(_settings())


@app.command()
def down() -> None:
    """Stop exactly the processes `holdfast up` started (by their recorded PIDs)."""
    from gateway import stack

    for name, was_running in stack.down(_settings()).items():
        out.print(f"{name}: {'stopped' if was_running else 'not running'}")


@app.command()
def status() -> None:
    """Show each component: its process and whether it answers."""
    from gateway import stack

    settings = _settings()
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: gateway.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port).")] = None,
) -> None:
    """Run only the gateway in the foreground (containers, systemd); services are external."""
    import uvicorn

    from gateway.app import create_app

    settings = _settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.gateway.host,
        port=port or settings.gateway.port,
        access_log=False,
    )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups the key may read.")],
    roles: Annotated[
        str, typer.Option(help="Comma-separated roles: query, ingest, admin.")
    ] = "query",
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from gateway.keys import KeyStore

    settings = _settings()
    try:
        key_id, key = KeyStore(settings.keys_db).create(
            name, groups=_split(groups), roles=_split(roles)
        )
    except HoldfastError as exc:
        _fail(str(exc))
    out.print(f"key id {key_id} for {name}; the key (shown once):")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, groups, roles; never the keys themselves)."""
    from gateway.keys import KeyStore

    table = Table("id", "name", "groups", "roles", "created", "revoked")
    for k in KeyStore(_settings().keys_db).list():
        table.add_row(
            k.key_id,
            k.name,
            ",".join(k.groups),
            ",".join(k.roles),
            k.created_at,
            k.revoked_at or "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="Key id, or a name (revokes all its keys).")],
) -> None:
    """Revoke a key; it stops working at once."""
    from gateway.keys import KeyStore

    try:
        count = KeyStore(_settings().keys_db).revoke(key)
    except HoldfastError as exc:
        _fail(str(exc))
    out.print(f"revoked {count} key(s)")


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Markdown files or folders.", exists=True)],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups (required).")],
    redact: Annotated[bool, typer.Option(help="Redact PII before indexing.")] = True,
) -> None:
    """Index documents into Weaviate (needs the stack up: `holdfast up`)."""
    from rich.progress import Progress

    from gateway.container import build_components
    from ingestion.pipeline import SUPPORTED_SUFFIXES, ChunkingPolicy, ingest_files

    settings = _settings()
    files = sorted(
        p
        for path in paths
        for p in ([path] if path.is_file() else path.rglob("*"))
        if (p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
        or (path.is_file() and p == path)
    )
    if not files:
        _fail("no Markdown files found in the given paths")
    try:
        components = build_components(settings)
        with out.status("loading models and connecting to Weaviate…"):
            components.warm_up()
        with Progress(console=out) as progress:
            task = progress.add_task("indexing", total=len(files))
            report = ingest_files(
                files,
                groups=_split(groups),
                store=components.store,
                embedder=components.embedder,
                redactor=components.redactor if redact else None,
                policy=ChunkingPolicy(
                    settings.chunking.max_tokens, settings.chunking.overlap_tokens
                ),
                on_file=lambda _: progress.advance(task),
            )
        components.close()
    except HoldfastError as exc:
        _fail(f"{exc} (is the stack up? `holdfast status`)")
    for f in report.files:
        if f.status == "rejected":
            err.print(f"[yellow]rejected[/] {f.source}: {f.reason}", highlight=False)
    redactions = ", ".join(f"{k}={v}" for k, v in sorted(report.redactions.items())) or "none"
    out.print(
        f"indexed {report.indexed} file(s), {report.chunks} chunk(s); "
        f"rejected {report.rejected}; PII redacted: {redactions}"
    )
    if report.rejected and not report.indexed:
        raise typer.Exit(1)


def _citations_table(citations: list[dict[str, Any]]) -> Table:
    table = Table("#", "cited", "document", "section", "similarity", "quote", show_lines=False)
    for c in citations:
        table.add_row(
            str(c["index"]),
            "yes" if c.get("cited") else "",
            Path(str(c["source"])).name,
            " > ".join(p for p in (c["title"], c["section"]) if p),
            f"{c['similarity']:.2f}",
            (str(c["quote"])[:60] + "…") if len(str(c["quote"])) > 60 else str(c["quote"]),
        )
    return table


def _print_answer(body: dict[str, Any]) -> None:
    out.print(
        f"\n[bold]Answer[/] ({body.get('model') or 'no model call'}; "
        f"retrieval {body['retrieval_status']}, confidence {body['confidence']:.2f}):\n"
        f"{body['answer']}\n",
        highlight=False,
    )
    if body.get("citations"):
        out.print("[bold]Citations[/]")
        out.print(_citations_table(body["citations"]))
    elif body.get("refused"):
        out.print(f"(refused: {body.get('refusal_reason')})")


def _stream_answer(base: str, key: str, question: str) -> None:
    citations: list[dict[str, Any]] = []
    with httpx.stream(
        "POST",
        f"{base}/v1/query",
        json={"question": question, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=300.0,
    ) as response:
        if response.status_code != 200:
            body = json.loads(response.read() or b"{}")
            _fail(
                f"{body.get('title', 'error')}: {body.get('detail', '')} "
                f"(HTTP {response.status_code})"
            )
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "retrieval":
                    citations = data["citations"]
                    out.print(
                        f"[dim]retrieval {data['retrieval_status']}, "
                        f"confidence {data['confidence']:.2f}[/]"
                    )
                elif event == "token":
                    out.print(data["text"], end="", highlight=False, markup=False)
                elif event == "error":
                    _fail(f"{data['title']}: {data['detail']}")
                elif event == "done":
                    out.print()
                    cited = set(data.get("cited", []))
                    for c in citations:
                        c["cited"] = c["index"] in cited
                    if citations and not data.get("refused"):
                        out.print(_citations_table(citations))


@app.command("query")
def query_command(
    question: Annotated[str, typer.Argument(help="The question.")],
    key: Annotated[
        str | None,
        typer.Option(envvar="HOLDFAST_API_KEY", help="API key (default: the admin key file)."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Gateway URL (default: from settings).")] = None,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is generated.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw JSON response.")] = False,
) -> None:
    """Ask the running gateway a question; print the answer and a citations table."""
    settings = _settings()
    if key is None:
        if not settings.admin_key_file.exists():
            _fail("no --key given and no admin key file; run `holdfast up` first")
        key = settings.admin_key_file.read_text().strip()
    base = url or settings.gateway.base_url
    try:
        if stream:
            _stream_answer(base, key, question)
            return
        response = httpx.post(
            f"{base}/v1/query",
            json={"question": question},
            headers={"Authorization": f"Bearer {key}"},
            timeout=300.0,
        )
    except httpx.HTTPError as exc:
        _fail(
            f"cannot reach the gateway at {base} ({type(exc).__name__}); "
            "is it up? (holdfast status)"
        )
    body = response.json()
    if response.status_code != 200:
        _fail(
            f"{body.get('title', 'error')}: {body.get('detail', '')} (HTTP {response.status_code})"
        )
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        _print_answer(body)


@app.command(hidden=True)
def ask(
    question: str,
    key: str | None = None,
    url: str | None = None,
    as_json: bool = False,
) -> None:
    """Older name of `holdfast query`."""
    query_command(question, key=key, url=url, stream=False, as_json=as_json)


@app.command()
def demo(
    question: Annotated[str, typer.Option(help="The question to ask.")] = DEMO_QUESTION,
) -> None:
    """Start the stack, index the bundled sample handbook, and ask it one question."""
    from gateway.keys import KeyStore

    settings = _settings()
    _run_up(settings)
    out.rule("ingesting the sample corpus")
    ingest([SAMPLE_CORPUS], groups=DEMO_GROUP, redact=True)
    _, key = KeyStore(settings.keys_db).create("demo", groups=[DEMO_GROUP], roles=["query"])
    out.rule("asking")
    out.print(f"Q: {question}", highlight=False)
    ask(question, key=key, url=None, as_json=False)


@config_app.command("check")
def config_check(
    schema: Annotated[bool, typer.Option(help="Print the JSON schema of holdfast.yaml.")] = False,
) -> None:
    """Validate holdfast.yaml, env overrides and models.yaml; print the effective settings."""
    from gateway.models_config import resolve_models

    if schema:
        print(json.dumps(Settings.model_json_schema(), indent=2))
        return
    settings = _settings()
    try:
        models = resolve_models(settings)
    except HoldfastError as exc:
        _fail(str(exc))
    out.print(f"settings OK (file: {config_path()}{'' if config_path().exists() else ', absent'})")
    out.print(
        f"models OK: {', '.join(e.model_name for e in models.model_list)} "
        f"({settings.models_path}{'' if settings.models_path.exists() else ', defaults'})"
    )


def main() -> None:  # pragma: no cover - console entry for `python -m gateway.cli`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
