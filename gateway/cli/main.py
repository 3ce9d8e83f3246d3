"""``holdfast``: run the local stack, manage keys, ingest, ask. The CLI is a composition root."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from gateway.cli.audit import audit_command, record_key_action
from gateway.cli.bundle import bundle_app
from gateway.cli.eval import eval_command
from gateway.cli.models import models_app
from gateway.cli.reindex import reindex_command
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
app.command("audit")(audit_command)
app.add_typer(models_app, name="models")
app.add_typer(bundle_app, name="bundle")
app.command("reindex")(reindex_command)
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
        record_key_action(settings, "key.created", name="admin", via="holdfast up")
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
    from gateway.local import stack

    for name, was_running in stack.down(_settings()).items():
        out.print(f"{name}: {'stopped' if was_running else 'not running'}")


@app.command()
def status() -> None:
    """Show each component: its process and whether it answers."""
    from gateway.local import stack

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

    from gateway.api.app import create_app

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
    from gateway.security.keys import KeyStore

    settings = _settings()
    try:
        key_id, key = KeyStore(settings.keys_db).create(
            name, groups=_split(groups), roles=_split(roles)
        )
    except HoldfastError as exc:
        _fail(str(exc))
    record_key_action(settings, "key.created", key_id=key_id, name=name)
    out.print(f"key id {key_id} for {name}; the key (shown once):")
    print(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, names, groups, roles; never the keys themselves)."""
    from gateway.security.keys import KeyStore

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
    from gateway.security.keys import KeyStore

    settings = _settings()
    try:
        count = KeyStore(settings.keys_db).revoke(key)
    except HoldfastError as exc:
        _fail(str(exc))
    record_key_action(settings, "key.revoked", target=key, count=str(count))
    out.print(f"revoked {count} key(s)")


def _collect(paths: list[Path], recursive: bool) -> list[Path]:
    from ingestion.validation import SUPPORTED_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)  # named explicitly: sent even if unsupported (rejected w/ reason)
            continue
        found = path.rglob("*") if recursive else path.glob("*")
        files += [p for p in found if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]
    return sorted(dict.fromkeys(p.resolve() for p in files))


def _api_key(settings: Settings, key: str | None) -> str:
    if key:
        return key
    if not settings.admin_key_file.exists():
        _fail("no --key given (or HOLDFAST_API_KEY) and no admin key file; run `holdfast up`")
    return settings.admin_key_file.read_text().strip()


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    return f"{body.get('title', 'error')}: {body.get('detail', '')} (HTTP {response.status_code})"


def ingest_via_api(
    files: list[Path],
    *,
    groups: list[str],
    redact: bool,
    base: str,
    key: str,
    poll_s: float = 0.5,
) -> dict[str, object]:
    """Upload ``files`` as one job, follow it with a progress bar, return the final job."""
    from contextlib import ExitStack

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    headers = {"Authorization": f"Bearer {key}"}
    try:
        with ExitStack() as stack:
            parts = [
                ("files", (str(p), stack.enter_context(p.open("rb")), "application/octet-stream"))
                for p in files
            ]
            with out.status(f"uploading {len(files)} file(s)…"):
                response = httpx.post(
                    f"{base}/v1/documents",
                    files=parts,
                    data={"access_groups": ",".join(groups), "redact": str(redact).lower()},
                    headers=headers,
                    timeout=600.0,
                )
        if response.status_code != 202:
            _fail(_problem(response))
        job_id = response.json()["job_id"]
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[chunks]} chunks"),
            console=out,
        ) as progress:
            task = progress.add_task(f"ingesting ({job_id})", total=len(files), chunks=0)
            while True:
                reply = httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=30.0)
                if reply.status_code != 200:
                    _fail(_problem(reply))
                job: dict[str, Any] = reply.json()
                progress.update(task, completed=job["files_done"], chunks=job["chunks_written"])
                if job["status"] in {"succeeded", "partial", "failed"}:
                    return job
                time.sleep(poll_s)
    except httpx.ConnectError:
        _fail(f"no gateway is running at {base}; start it with `holdfast up`")
    except httpx.HTTPError as exc:
        _fail(f"the gateway at {base} did not answer ({type(exc).__name__})")
    raise AssertionError("unreachable")


def _print_job(job: dict[str, object]) -> int:
    """Summary table; returns the number of files that failed."""
    table = Table("file", "status", "chunks", "reason / PII redacted")
    failed = 0
    redacted: dict[str, int] = {}
    for f in job["files"]:  # type: ignore[attr-defined]
        ok = f["status"] in {"indexed", "unchanged", "duplicate"}
        failed += not ok
        for kind, n in f["redactions"].items():
            redacted[kind] = redacted.get(kind, 0) + n
        note = f["reason"] or ", ".join(f"{k}={v}" for k, v in sorted(f["redactions"].items()))
        colour = "green" if f["status"] == "indexed" else ("dim" if ok else "red")
        table.add_row(Path(f["source"]).name, f"[{colour}]{f['status']}[/]", str(f["chunks"]), note)
    out.print(table)
    pii = ", ".join(f"{k}={v}" for k, v in sorted(redacted.items())) or "none"
    out.print(
        f"job {job['job_id']}: {job['status']}; {job['files_total']} file(s), "
        f"{job['chunks_written']} chunk(s) written, {failed} failed; PII redacted: {pii}",
        highlight=False,
    )
    return failed


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders.", exists=True)],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups (required).")],
    recursive: Annotated[bool, typer.Option(help="Descend into sub-folders.")] = False,
    redact: Annotated[bool, typer.Option(help="Redact PII before indexing.")] = True,
    key: Annotated[
        str | None,
        typer.Option(envvar="HOLDFAST_API_KEY", help="API key (default: the admin key file)."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Gateway URL (default: from settings).")] = None,
) -> None:
    """Send documents to the running gateway for indexing; exits 1 if any file failed."""
    settings = _settings()
    group_list = _split(groups)
    if not group_list:
        _fail("--groups needs at least one access group")
    files = _collect(paths, recursive)
    if not files:
        _fail("no supported files found in the given paths (try --recursive)")
    job = ingest_via_api(
        files,
        groups=group_list,
        redact=redact,
        base=url or settings.gateway.base_url,
        key=_api_key(settings, key),
    )
    if _print_job(job):
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
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Older name of `holdfast query`."""
    query_command(question, key=key, url=url, stream=False, as_json=as_json)


@app.command()
def demo(
    question: Annotated[str, typer.Option(help="The question to ask.")] = DEMO_QUESTION,
) -> None:
    """Start the stack, index the bundled sample handbook, and ask it one question."""
    from gateway.security.keys import KeyStore

    settings = _settings()
    _run_up(settings)
    out.rule("ingesting the sample corpus")
    ingest([SAMPLE_CORPUS], groups=DEMO_GROUP, recursive=False, redact=True, key=None, url=None)
    _, key = KeyStore(settings.keys_db).create("demo", groups=[DEMO_GROUP], roles=["query"])
    out.rule("asking")
    out.print(f"Q: {question}", highlight=False)
    ask(question, key=key, url=None, as_json=False)


@config_app.command("check")
def config_check(
    schema: Annotated[bool, typer.Option(help="Print the JSON schema of holdfast.yaml.")] = False,
) -> None:
    """Validate holdfast.yaml, env overrides and models.yaml; print the effective settings."""
    from gateway.models.config import resolve_models

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


def main() -> None:  # pragma: no cover - console entry for `python -m gateway.cli.main`
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
