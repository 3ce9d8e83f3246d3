"""A gateway killed with SIGKILL in the middle of an ingest job resumes it after a restart and
ends with exactly the chunks of a clean run: nothing lost, nothing duplicated.

Runs the acceptance size (200 files) by default; HOLDFAST_RESUME_FILES sets another size.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gateway.local import stack
from gateway.security.keys import KeyStore
from gateway.security.secrets import id_key
from gateway.settings import Settings
from ingestion.identity import Identity
from ingestion.pipeline import ChunkingPolicy, ingest_files
from tests.corpus_builder.build import text_files
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.ingest_api import job, upload, wait_for_job

pytestmark = pytest.mark.integration
FILES = int(os.environ.get("HOLDFAST_RESUME_FILES", "200"))


def _gateway_settings(live: Settings, home: Path, port: int, collection: str) -> Settings:
    """A second gateway on the live stack's Weaviate and Ollama, with its own home (job store)
    and its own collection (so its chunk count is its own). Its rate limit is out of the way:
    a poll held back by ``Retry-After`` under CI load once let the whole job finish before the
    kill."""
    (home / "secrets").mkdir(parents=True, exist_ok=True)
    shutil.copy(live.weaviate_key_file, home / "secrets" / live.weaviate_key_file.name)
    return live.model_copy(
        update={
            "home": home,
            "gateway": live.gateway.model_copy(update={"port": port}),
            "weaviate": live.weaviate.model_copy(update={"collection": collection}),
            "limits": live.limits.model_copy(
                update={"rate_per_minute": 100_000.0, "burst": 10_000}
            ),
        }
    )


def _start(settings: Settings) -> subprocess.Popen[bytes]:
    spec = stack.gateway_spec(settings)
    log = (settings.home / "gateway.log").open("ab")
    proc = subprocess.Popen(spec.argv, env=spec.env, stdout=log, stderr=log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(spec.health_url, timeout=2.0).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (settings.home / "gateway.log").read_text()[-3000:]
        time.sleep(0.5)
    raise AssertionError("gateway did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _count(settings: Settings) -> int:
    from gateway.container import build_store

    store = build_store(settings)
    try:
        return store.count()
    finally:
        store.close()


def _clean_run_count(live: LiveStack, files: list[Path], collection: str) -> int:
    """The same files through the same pipeline in-process, uninterrupted, into a collection
    of their own."""
    from gateway.container import build_store

    settings = live.settings.model_copy(
        update={"weaviate": live.settings.weaviate.model_copy(update={"collection": collection})}
    )
    store = build_store(settings)
    try:
        store.ensure_schema()
        report = ingest_files(
            files,
            groups=["bulk"],
            store=store,
            embedder=live.components.embedder,
            redactor=None,
            policy=ChunkingPolicy(settings.chunking.max_tokens, settings.chunking.overlap_tokens),
            identity=Identity(id_key(settings)),
        )
        assert report.indexed == len(files)
        return store.count()
    finally:
        store.close()


def test_sigkill_mid_job_resumes_and_matches_a_clean_run(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    files = text_files(tmp_path / "bulk", FILES)
    clean = _clean_run_count(live_stack, files, f"ResumeClean{os.getpid()}")
    collection = f"ResumeKilled{os.getpid()}"
    settings = _gateway_settings(live_stack.settings, tmp_path / "home", PORT_BASE + 40, collection)
    # raw (redact=false) uploads are an admin's decision
    _, key = KeyStore(settings.keys_db).create("bulk", groups=["bulk"], roles=["ingest", "admin"])
    base = settings.gateway.base_url
    proc = _start(settings)
    try:
        response = upload(base, key, files, groups="bulk", redact=False)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        while job(base, key, job_id)["files_done"] < FILES // 4:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted = _count(settings)
        assert 0 < interrupted < clean
        proc = _start(settings)  # the worker resumes the job on start-up
        body = wait_for_job(base, key, job_id)
    finally:
        _stop(proc)
    assert body["status"] == "succeeded", [f for f in body["files"] if f["status"] != "indexed"]
    assert body["files_done"] == FILES
    assert _count(settings) == clean >= FILES
