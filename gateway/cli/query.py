"""``holdfast query`` (and its older name ``ask``): ask the running gateway, print the answer
and its citations; ``--stream`` prints the answer as the gateway's SSE events arrive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from httpx_sse import connect_sse
from rich.table import Table

from gateway.cli.common import cli_settings, fail, gateway_base, out, problem_text


def citations_table(citations: list[dict[str, Any]]) -> Table:
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


def print_answer(body: dict[str, Any]) -> None:
    out.print(
        f"\n[bold]Answer[/] ({body.get('model') or 'no model call'}; "
        f"retrieval {body['retrieval_status']}, confidence {body['confidence']:.2f}):\n"
        f"{body['answer']}\n",
        highlight=False,
    )
    if body.get("citations"):
        out.print("[bold]Citations[/]")
        out.print(citations_table(body["citations"]))
    elif body.get("refused"):
        out.print(f"(refused: {body.get('refusal_reason')})")


def stream_answer(base: str, key: str, question: str) -> None:
    """Print tokens as they come; the citations table once the answer is done."""
    citations: list[dict[str, Any]] = []
    with (
        httpx.Client(timeout=300.0) as client,
        connect_sse(
            client,
            "POST",
            f"{base}/v1/query",
            json={"question": question, "stream": True},
            headers={"Authorization": f"Bearer {key}"},
        ) as events,
    ):
        if events.response.status_code != 200:
            events.response.read()
            fail(problem_text(events.response))
        for event in events.iter_sse():
            data = event.json()
            if event.event == "retrieval":
                citations = data["citations"]
                out.print(
                    f"[dim]retrieval {data['retrieval_status']}, "
                    f"confidence {data['confidence']:.2f}[/]"
                )
            elif event.event == "token":
                out.print(data["text"], end="", highlight=False, markup=False)
            elif event.event == "error":
                fail(f"{data['title']}: {data['detail']}")
            elif event.event == "done":
                out.print()
                cited = set(data.get("cited", []))
                for c in citations:
                    c["cited"] = c["index"] in cited
                if citations and not data.get("refused"):
                    out.print(citations_table(citations))


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
    settings = cli_settings()
    base = gateway_base(url, settings)
    if key is None:
        if not settings.admin_key_file.exists():
            fail("no --key given and no admin key file; run `holdfast up` first")
        key = settings.admin_key_file.read_text().strip()
    try:
        if stream:
            stream_answer(base, key, question)
            return
        response = httpx.post(
            f"{base}/v1/query",
            json={"question": question},
            headers={"Authorization": f"Bearer {key}"},
            timeout=300.0,
        )
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach the gateway at {base} ({type(exc).__name__}); "
            "is it up? (holdfast status)"
        )
    if response.status_code != 200:
        fail(problem_text(response))
    body = response.json()
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        print_answer(body)


def ask(
    question: str,
    key: str | None = None,
    url: str | None = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Older name of `holdfast query`."""
    query_command(question, key=key, url=url, stream=False, as_json=as_json)
