"""Helpers for integration tests that go through the real API: upload, follow a job, read the
audit log."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from gateway.cli.ingest import within_rate_limit


def upload(
    base: str,
    key: str,
    files: Sequence[Path],
    *,
    groups: str,
    redact: bool = True,
    profile: str | None = None,
    names: Sequence[str] | None = None,
) -> httpx.Response:
    form = {"access_groups": groups, "redact": str(redact).lower()}
    if profile is not None:
        form["redaction_profile"] = profile
    with ExitStack() as stack:
        parts = [
            ("files", (name, stack.enter_context(path.open("rb")), "application/octet-stream"))
            for path, name in zip(files, names or [str(p) for p in files], strict=True)
        ]
        return httpx.post(
            f"{base}/v1/documents",
            files=parts,
            data=form,
            headers={"Authorization": f"Bearer {key}"},
            timeout=300.0,
        )


def job(base: str, key: str, job_id: str) -> dict[str, Any]:
    """The job's state; waits out the key's rate limit (429 + Retry-After) like a client should."""
    response = within_rate_limit(
        lambda: httpx.get(
            f"{base}/v1/jobs/{job_id}", headers={"Authorization": f"Bearer {key}"}, timeout=30.0
        )
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def audit_records(base: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Audit records (newest first) matching ``params``; waits out the key's rate limit, since
    the uploads and job polls before it may have spent the key's burst."""
    response = within_rate_limit(
        lambda: httpx.get(
            f"{base}/admin/audit",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30.0,
        )
    )
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def wait_for_job(base: str, key: str, job_id: str, timeout_s: float = 600.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = job(base, key, job_id)
        if body["status"] in {"succeeded", "partial", "failed"}:
            return body
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout_s} s")


def ingest(
    base: str, key: str, files: Sequence[Path], *, groups: str, **kwargs: Any
) -> dict[str, Any]:
    # waits out the key's rate limit (429 + Retry-After) like a client should
    response = within_rate_limit(lambda: upload(base, key, files, groups=groups, **kwargs))
    assert response.status_code == 202, response.text
    return wait_for_job(base, key, response.json()["job_id"])
