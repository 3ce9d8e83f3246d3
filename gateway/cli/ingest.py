"""``holdfast ingest``: upload files to the running gateway as jobs (at most
``ingestion.max_files_per_job`` files each) and follow them."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import httpx
import typer
from rich.table import Table

from gateway.cli.common import cli_settings, fail, gateway_base, out, problem_text, split_csv
from gateway.settings import Settings

FINISHED = frozenset({"succeeded", "partial", "failed"})


def collect(paths: list[Path], recursive: bool) -> list[Path]:
    """Files named explicitly, and the supported files inside named folders; each once."""
    from ingestion.validation import SUPPORTED_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)  # named explicitly: sent even if unsupported (rejected w/ reason)
            continue
        found = path.rglob("*") if recursive else path.glob("*")
        files += [p for p in found if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES]
    return sorted(dict.fromkeys(p.resolve() for p in files))


def api_key(settings: Settings, key: str | None) -> str:
    """``--key`` (or ``HOLDFAST_API_KEY``), else the admin key ``holdfast up`` saved."""
    if key:
        return key
    if not settings.admin_key_file.exists():
        fail("no --key given (or HOLDFAST_API_KEY) and no admin key file; run `holdfast up`")
    return settings.admin_key_file.read_text().strip()


def within_rate_limit(send: Callable[[], httpx.Response], attempts: int = 30) -> httpx.Response:
    """``send()``, again after each 429 once its ``Retry-After`` has passed (the key's rate
    limit); the last answer when ``attempts`` run out."""
    for _ in range(attempts - 1):
        response = send()
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("Retry-After", "1")))
    return send()


def _form(groups: list[str], redact: bool, profile: str | None) -> dict[str, str]:
    form = {"access_groups": ",".join(groups), "redact": str(redact).lower()}
    if profile:
        form["redaction_profile"] = profile
    return form


def _opened(stack: ExitStack, path: Path) -> BinaryIO:
    """``path`` opened for the upload (closed with ``stack``); an unreadable one exits naming
    it rather than with a traceback (files of earlier jobs are in already: re-runs skip them)."""
    try:
        return stack.enter_context(path.open("rb"))
    except OSError as exc:
        fail(f"cannot read {path} ({exc.strerror}); fix its permissions or leave it out")


def ingest_via_api(
    files: list[Path],
    *,
    groups: list[str],
    redact: bool,
    base: str,
    profile: str | None = None,
    key: str,
    poll_s: float = 1.0,  # half the default sustained rate limit, leaving room for uploads
) -> dict[str, object]:
    """Upload ``files`` as one job, follow it with a progress bar, return the final job."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    headers = {"Authorization": f"Bearer {key}"}
    try:
        with ExitStack() as stack:
            parts = [
                ("files", (str(p), _opened(stack, p), "application/octet-stream")) for p in files
            ]
            handles = [handle for _field, (_name, handle, _type) in parts]

            def send() -> httpx.Response:
                for handle in handles:  # a retry sends every file from its start again
                    handle.seek(0)
                return httpx.post(
                    f"{base}/v1/documents",
                    files=parts,
                    data=_form(groups, redact, profile),
                    headers=headers,
                    timeout=600.0,
                )

            with out.status(f"uploading {len(files)} file(s)…"):
                response = within_rate_limit(send)
        if response.status_code != 202:
            fail(problem_text(response))
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
                reply = within_rate_limit(
                    lambda: httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers, timeout=30.0)
                )
                if reply.status_code != 200:
                    fail(problem_text(reply))
                job: dict[str, Any] = reply.json()
                progress.update(task, completed=job["files_done"], chunks=job["chunks_written"])
                if job["status"] in FINISHED:
                    return job
                time.sleep(poll_s)
    except httpx.ConnectError:
        fail(f"no gateway is running at {base}; start it with `holdfast up`")
    except httpx.HTTPError as exc:
        fail(f"the gateway at {base} did not answer ({type(exc).__name__})")


def print_job(job: dict[str, object]) -> int:
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


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders.", exists=True)],
    groups: Annotated[str, typer.Option(help="Comma-separated access groups (required).")],
    recursive: Annotated[bool, typer.Option(help="Descend into sub-folders.")] = False,
    redact: Annotated[
        bool, typer.Option(help="--no-redact indexes raw text (admin keys only).")
    ] = True,
    profile: Annotated[
        str | None,
        typer.Option(
            "--redaction-profile",
            help="strict (names and every PII type), structured (e-mail, phone, SSN, card, "
            "IBAN, secrets; no names) or none. Default: what the server configures for --groups.",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="HOLDFAST_API_KEY", help="API key (default: the admin key file)."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Gateway URL (default: from settings).")] = None,
) -> None:
    """Send documents to the running gateway for indexing; exits 1 if any file failed."""
    settings = cli_settings()
    base = gateway_base(url, settings)
    group_list = split_csv(groups)
    if not group_list:
        fail("--groups needs at least one access group")
    files = collect(paths, recursive)
    if not files:
        fail("no supported files found in the given paths (try --recursive)")
    per_job = settings.ingestion.max_files_per_job
    batches = [files[i : i + per_job] for i in range(0, len(files), per_job)]
    failed = 0
    for n, batch in enumerate(batches, start=1):
        if len(batches) > 1:  # the server takes at most max_files_per_job files an upload
            out.print(f"job {n} of {len(batches)}: {len(batch)} file(s)", highlight=False)
        job = ingest_via_api(
            batch,
            groups=group_list,
            redact=redact,
            profile=profile,
            base=base,
            key=api_key(settings, key),
        )
        failed += print_job(job)
    if failed:
        raise typer.Exit(1)
