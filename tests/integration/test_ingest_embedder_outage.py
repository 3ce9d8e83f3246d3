"""The embedding service down during an ingest job, with the real job store and worker, the real
Weaviate and a real embedding server (the packaged MiniLM served by the test Ollama) behind a
TCP proxy the test stops: bounded retries with backoff, then a clear reason for each file and
nothing already indexed touched; an outage shorter than the retry window is ridden out.

The gateway's own embedder is in-process (it cannot go down apart from the gateway), so the job
runs here on the same JobStore and IngestWorker the jobs API uses, with an Ollama embedder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.security.secrets import id_key
from ingestion.embedding import EmbeddingPolicy
from ingestion.identity import Identity
from ingestion.jobs import Job, JobFile, JobStore, NewFile
from ingestion.pipeline import ChunkingPolicy, FileResult, IngestOptions, ingest_batch
from ingestion.worker import IngestWorker
from services.ollama_embedder import OllamaEmbedder
from services.redaction_profile import RedactionProfile
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_models import MINILM, ollama_minilm  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration

PROXY_PORT = PORT_BASE + 61
GROUP = "outage"


@pytest.fixture
def proxy(live_stack: LiveStack, ollama_minilm: str) -> Iterator[list[TcpProxy]]:  # noqa: F811
    """The embedding server's address; the list holds the current proxy so a test can replace it."""
    current = [TcpProxy(PROXY_PORT, live_stack.settings.ollama.port).start()]
    yield current
    current[0].stop()


def run_job(
    live_stack: LiveStack, tmp_path: Path, files: Sequence[Path], policy: EmbeddingPolicy
) -> Job:
    embedder = OllamaEmbedder(f"http://127.0.0.1:{PROXY_PORT}", MINILM, timeout_s=30, max_retries=0)
    options = IngestOptions(
        groups=(GROUP,),
        identity=Identity(id_key(live_stack.settings)),
        redact=False,
        chunking=ChunkingPolicy(200, 32),
        embedding=policy,
    )

    def run_batch(job: Job, batch: Sequence[JobFile]) -> list[FileResult]:
        return ingest_batch(
            [(Path(f.path), f.source) for f in batch],
            options=options,
            store=live_stack.components.store,
            embedder=embedder,
            redactor=None,
        )

    jobs = JobStore(tmp_path / "jobs.db")
    job_id = jobs.create(
        owner="tester",
        groups=[GROUP],
        redaction=RedactionProfile.NONE,
        metadata={},
        files=[NewFile(source=str(p), path=str(p)) for p in files],
        writer_groups=None,
    )
    IngestWorker(jobs, run_batch, uploads=tmp_path / "uploads", batch_files=16).run_job(job_id)
    return jobs.get(job_id)


def stored(live_stack: LiveStack) -> dict[str, str]:
    return {cid: text for cid, _, text in live_stack.components.store.chunk_texts()}


def test_embedding_service_down_fails_each_file_clearly_after_bounded_retries(
    live_stack: LiveStack, proxy: list[TcpProxy], tmp_path: Path
) -> None:
    manual = tmp_path / "pump-manual.md"
    manual.write_text("# Pump manual\n\nBleed the hydraulic pump before the first start.\n")
    first = run_job(live_stack, tmp_path, [manual], EmbeddingPolicy())
    assert [f.status for f in first.files] == ["indexed"]
    before = stored(live_stack)
    assert any("Bleed the hydraulic pump" in t for t in before.values())

    proxy[0].stop()  # the embedding server is gone
    manual.write_text("# Pump manual\n\nNever start the pump dry; bleed it first.\n")
    fresh = tmp_path / "valve-guide.md"
    fresh.write_text("# Valve guide\n\nTurn the relief valve a quarter turn at most.\n")
    policy = EmbeddingPolicy(retries=2, backoff_s=0.3, max_backoff_s=1.0)
    started = time.monotonic()
    job = run_job(live_stack, tmp_path / "down", [manual, fresh], policy)
    elapsed = time.monotonic() - started

    assert job.status == "failed"
    for file in job.files:
        assert file.status == "failed"
        assert "embedding service failed 3 times" in file.reason
        assert f"ollama embeddings ({MINILM})" in file.reason
    assert 0.3 + 0.6 <= elapsed < 60  # backed off between attempts, and gave up in bounded time
    assert stored(live_stack) == before  # the old version is intact, nothing new was written


def test_an_outage_shorter_than_the_retry_window_is_ridden_out(
    live_stack: LiveStack, proxy: list[TcpProxy], tmp_path: Path
) -> None:
    before = stored(live_stack)
    note = tmp_path / "shift-note.md"
    note.write_text("# Shift note\n\nThe crane inspection moved to Thursday morning.\n")
    proxy[0].stop()

    def come_back() -> None:
        time.sleep(1.5)
        proxy[0] = TcpProxy(PROXY_PORT, live_stack.settings.ollama.port).start()

    restarter = threading.Thread(target=come_back)
    restarter.start()
    policy = EmbeddingPolicy(retries=6, backoff_s=0.5, max_backoff_s=4.0)  # about 14 s window
    job = run_job(live_stack, tmp_path, [note], policy)
    restarter.join()

    assert job.status == "succeeded", job.files
    [file] = job.files
    assert file.status == "indexed" and file.chunks >= 1
    after = stored(live_stack)
    assert {cid: after.get(cid) for cid in before} == before  # old chunks untouched
    added = [t for cid, t in after.items() if cid not in before]
    assert len(added) == file.chunks and "crane inspection" in " ".join(added)
