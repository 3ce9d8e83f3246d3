"""The product arm: pages uploaded through the public API, questions through ``POST /v1/search``.

Each arm uploads the pages under a source prefix of its own (``pydocs-redact/library/os.html``)
into an access group of its own, and queries with a key that reads only that group, so the arms
never see each other's documents. A document id derives from the source, so two arms need two
prefixes. Hits map back to pages by their ``source`` (or, failing that, by the ``doc_id`` the
ingest job reported). The mapping takes a chunk list (one result per chunk, today) and a
document-grouped list (one result per document, with ``passages``) alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

DONE = {"succeeded", "partial", "failed"}


@dataclass(frozen=True)
class Arm:
    name: str  # product, product-noredact, the product-* ladder
    group: str  # the access group its documents carry and its key reads
    redact: bool
    alpha: float | None = None  # the search's hybrid weight (None: the gateway's setting)
    rerank: bool = False  # ask the gateway to rerank (its rerank-default alias)
    uploads: bool = True  # False: searches the pages another arm of the same group uploaded

    @property
    def prefix(self) -> str:
        return self.group


PRODUCT_ARMS = {
    "product": Arm("product", "pydocs-redact", redact=True),
    "product-noredact": Arm("product-noredact", "pydocs-noredact", redact=False),
    # the retrieval ladder over the product arm's documents: BM25 only, vector only, hybrid
    # (the product arm itself), hybrid + the gateway's reranker
    "product-bm25": Arm("product-bm25", "pydocs-redact", True, alpha=0.0, uploads=False),
    "product-vector": Arm("product-vector", "pydocs-redact", True, alpha=1.0, uploads=False),
    "product-rerank": Arm("product-rerank", "pydocs-redact", True, rerank=True, uploads=False),
}


@dataclass
class IngestStats:
    arm: str
    pages: int
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks: int = 0
    seconds: float = 0.0
    redactions: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    doc_pages: dict[str, str] = field(default_factory=dict)  # doc_id -> page id

    @property
    def pages_per_s(self) -> float | None:
        return self.indexed / self.seconds if self.indexed and self.seconds else None

    @property
    def chunks_per_s(self) -> float | None:
        return self.chunks / self.seconds if self.chunks and self.seconds else None

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "doc_pages"}
        out["pages_per_s"] = self.pages_per_s
        out["chunks_per_s"] = self.chunks_per_s
        return out


class ProductClient:
    def __init__(self, url: str, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def upload(self, key: str, root: Path, pages: Sequence[str], arm: Arm) -> str:
        with ExitStack() as stack:
            parts = [
                (
                    "files",
                    (f"{arm.prefix}/{p}", stack.enter_context((root / p).open("rb")), "text/html"),
                )
                for p in pages
            ]
            response = self.http.post(
                f"{self.url}/v1/documents",
                files=parts,
                data={"access_groups": arm.group, "redact": str(arm.redact).lower()},
                headers=self._auth(key),
            )
        response.raise_for_status()
        return str(response.json()["job_id"])

    def _json(self, method: str, path: str, key: str, **kwargs: Any) -> dict[str, Any]:
        """One call that waits out the key's rate limit (429 + Retry-After), a few times."""
        for _ in range(5):
            response = self.http.request(method, self.url + path, headers=self._auth(key), **kwargs)
            if response.status_code != 429:
                break
            time.sleep(float(response.headers.get("Retry-After", "1")))
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def job(self, key: str, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job_id}", key)

    def search(
        self, key: str, query: str, top_k: int, *, alpha: float | None = None, rerank: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "top_k": top_k}
        if alpha is not None:
            body["alpha"] = alpha
        if rerank:
            body["rerank"] = True
        return self._json("POST", "/v1/search", key, json=body)

    def max_top_k(self, key: str, wanted: int) -> int:
        """The largest top_k up to ``wanted`` that the gateway accepts (its cap is a setting)."""
        for top_k in (wanted, 50, 20, 10):
            if top_k > wanted:
                continue
            response = self.http.post(
                f"{self.url}/v1/search",
                json={"query": "probe", "top_k": top_k},
                headers=self._auth(key),
            )
            if response.status_code != 400:
                response.raise_for_status()
                return top_k
        return 10


def ingest(
    client: ProductClient,
    key: str,
    root: Path,
    pages: Sequence[str],
    arm: Arm,
    *,
    batch: int = 50,
    on_progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 7200.0,
) -> IngestStats:
    """Upload every page in jobs of ``batch`` files, wait for all of them, count what happened."""
    stats = IngestStats(arm=arm.name, pages=len(pages))
    started = time.monotonic()
    batches = [pages[i : i + batch] for i in range(0, len(pages), batch)]
    jobs = [client.upload(key, root, b, arm) for b in batches]
    finished: dict[str, dict[str, Any]] = {}
    deadline = started + timeout_s
    while len(finished) < len(jobs):
        if time.monotonic() > deadline:
            raise TimeoutError(f"ingest jobs of {arm.name} did not finish in {timeout_s:.0f} s")
        done_files = 0
        for job_id in jobs:
            if job_id in finished:
                done_files += len(finished[job_id]["files"])
                continue
            body = client.job(key, job_id)
            done_files += int(body["files_done"])
            if body["status"] in DONE:
                finished[job_id] = body
        if on_progress:
            on_progress(done_files, len(pages))
        if len(finished) < len(jobs):
            time.sleep(1.0)
    stats.seconds = time.monotonic() - started
    prefix = f"{arm.prefix}/"
    for body in finished.values():
        for f in body["files"]:
            page = f["source"].removeprefix(prefix)
            if f["doc_id"]:
                stats.doc_pages[f["doc_id"]] = page
            if f["status"] == "indexed":
                stats.indexed += 1
                stats.chunks += int(f["chunks"])
                for entity, n in (f.get("redactions") or {}).items():
                    stats.redactions[entity] = stats.redactions.get(entity, 0) + int(n)
            elif f["status"] in {"unchanged", "duplicate"}:
                stats.unchanged += 1
            else:
                stats.failed += 1
                stats.failures.append(f"{page}: {f['status']} {f.get('reason', '')}".strip())
    if stats.unchanged and not stats.indexed:
        stats.seconds = 0.0  # nothing was ingested in this run; no throughput to report
    return stats


def page_of(result: Mapping[str, Any], prefix: str, doc_pages: Mapping[str, str]) -> str | None:
    """The page id a search result stands for: by source, else by doc id, else by a passage."""
    source = result.get("source")
    if isinstance(source, str) and source.startswith(f"{prefix}/"):
        return source.removeprefix(f"{prefix}/")
    doc_id = result.get("doc_id")
    if isinstance(doc_id, str) and doc_id in doc_pages:
        return doc_pages[doc_id]
    for passage in result.get("passages") or ():
        if isinstance(passage, Mapping) and (page := page_of(passage, prefix, doc_pages)):
            return page
    return None


def page_ranking(
    results: Iterable[Mapping[str, Any]], prefix: str, doc_pages: Mapping[str, str]
) -> list[str]:
    """Results (chunks or documents with passages) to a page ranking: each page once, at its
    best rank; results that map to no page (another arm's, another corpus's) are skipped."""
    ranking: dict[str, None] = {}
    for result in results:
        page = page_of(result, prefix, doc_pages)
        if page is not None:
            ranking.setdefault(page)
    return list(ranking)


def holdfast_command() -> list[str]:
    """The ``holdfast`` CLI of this interpreter's environment."""
    beside = Path(sys.executable).parent / "holdfast"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "gateway.cli.main"]


def create_query_key(
    home: Path, name: str, group: str, command: Sequence[str] | None = None
) -> str:
    """A query key reading only ``group``, minted by ``holdfast keys create`` in that home."""
    env = {**os.environ, "HOLDFAST_HOME": str(home)}
    done = subprocess.run(
        [*(command or holdfast_command()), "keys", "create", name, "--groups", group],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    key = done.stdout.strip().splitlines()[-1].strip()
    if not key.startswith("hf_"):
        raise RuntimeError(f"holdfast keys create printed no key: {done.stdout[-200:]!r}")
    return key


def admin_key_of(home: Path) -> str:
    return (home / "secrets" / "admin-api-key").read_text(encoding="utf-8").strip()


def save_ingest(path: Path, stats: IngestStats, url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": url, "at": time.time(), **stats.summary(), "doc_pages": stats.doc_pages}
    path.write_text(json.dumps(record, indent=1), encoding="utf-8")


def load_ingest(path: Path) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return body
