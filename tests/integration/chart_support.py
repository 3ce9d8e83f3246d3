"""What the two tests that run the Helm chart share (test_chart_podman.py, the podman floor, and
test_chart_cluster.py, a real cluster): the images of one commit, that commit's chart, the
single-node values, the Secrets as the chart README makes them, and the question asked through
the gateway at the end (an ingest key made with the bootstrap admin key, the sample leave policy
ingested, a cited answer)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.cli.stack import DEMO_QUESTION, SAMPLE_CORPUS
from tests.integration.podman_support import REPO, build_command, ensure_wheel_cache

HELM = REPO / ".venv" / "bin" / "helm"
CHART = "helm/holdfast"
RELEASE = "holdfast"
NAMESPACE = "holdfast"
GROUP = "handbook"
DOCUMENT = SAMPLE_CORPUS / "leave-policy.md"
# The Secrets the chart references, made as its README makes them (`kubectl create secret`, the
# values `openssl rand -hex 32`; an API key carries the `hf_` prefix): name -> key -> prefix.
SECRET_KEYS = {
    "holdfast-api-keys": {"admin-key": "hf_", "id-key": ""},
    "holdfast-weaviate-auth": {"api-key": ""},
}


@dataclass(frozen=True)
class Image:
    name: str
    tag: str
    digest: str
    archive: Path


@dataclass(frozen=True)
class Built:
    revision: str
    images: dict[str, Image]


def build_images(out: Path, revision: str, only: tuple[str, ...] = ()) -> Built:
    """`holdfast images build` of ``revision`` into ``out`` (wheels from the cache only)."""
    ensure_wheel_cache()
    started = time.monotonic()
    done = subprocess.run(
        build_command(out, revision, only),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    print(f"images of {revision[:12]} built in {time.monotonic() - started:.0f} s")
    return images_in(out)


def images_in(out: Path) -> Built:
    """The images a `holdfast images build --out out` left, from its images.json."""
    summary = json.loads((out / "images.json").read_text())
    print(f"images of revision {summary['revision']} in {out}")
    return Built(
        summary["revision"],
        {
            i["name"]: Image(i["name"], i["tag"], i["digest"], out / i["archive"])
            for i in summary["images"]
        },
    )


# revision -> the images built for it in this test session (both chart tests use the same)
_SESSION_BUILDS: dict[str, Built] = {}


def head_images(out: Path, revision: str) -> Built:
    """The images of ``revision``, built once per test session (in ``out`` the first time).
    HOLDFAST_TEST_IMAGES_DIR=<a `holdfast images build --out` folder> reuses images built
    before (any revision; the test says which), for working on one test."""
    reuse = os.environ.get("HOLDFAST_TEST_IMAGES_DIR")
    if reuse:
        return images_in(Path(reuse))
    if revision not in _SESSION_BUILDS:
        _SESSION_BUILDS[revision] = build_images(out, revision)
    return _SESSION_BUILDS[revision]


def chart_of(revision: str, dest: Path) -> Path:
    """The chart of the images' own commit (`git archive`), so an uncommitted chart change never
    meets images without the code it needs; its folder."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", revision, CHART],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, timeout=60, check=True)
    return dest / CHART


def new_secrets() -> dict[str, dict[str, str]]:
    return {
        name: {key: prefix + secrets.token_hex(32) for key, prefix in keys.items()}
        for name, keys in SECRET_KEYS.items()
    }


def single_node_values(images: dict[str, Image], registry: str) -> dict[str, Any]:
    """One gateway, one Weaviate, Ollama on CPU as the LLM, embeddings in-process in the gateway
    (the packaged MiniLM from the model store; no TEI pod), production guard rails on: every
    image from ``registry``, pinned by its digest."""
    return {
        "global": {"imageRegistry": registry},
        # one gateway: its state in SQLite under HOLDFAST_HOME, no shared rate-limit store
        "database": {"existingSecret": ""},
        "gateway": {
            "replicas": 1,
            "image": {"digest": images["holdfast-gateway"].digest},
            "autoscaling": {"enabled": False},
            "podDisruptionBudget": {"enabled": False},
            "rateLimitStore": {"existingSecret": ""},
            "resources": resources("250m", "2", "768Mi", "3Gi"),
        },
        "weaviate": {
            "replicas": 1,
            "image": {"digest": images["holdfast-weaviate"].digest},
            "resources": resources("250m", "2", "512Mi", "2Gi"),
        },
        "models": {
            "image": {"digest": images["holdfast-models"].digest},
            "modelList": [
                {
                    "model_name": "chat-default",
                    "litellm_params": {
                        "model": "ollama_chat/holdfast-qwen2.5-coder-0.5b",
                        "api_base": f"http://{RELEASE}-llm:11434",
                        "timeout": 180,
                        "max_retries": 0,
                        "max_tokens": 256,
                        "temperature": 0.1,
                    },
                },
                {
                    "model_name": "embed-default",
                    "litellm_params": {
                        "model": "local/all-MiniLM-L6-v2",
                        "timeout": 30,
                        "max_retries": 0,
                    },
                    "model_info": {"mode": "embedding"},
                },
            ],
        },
        "embeddings": {"enabled": False},
        "llm": {
            "engine": "ollama",
            "ollama": {"image": {"digest": images["holdfast-ollama"].digest}, "gpuCount": 0},
            "resources": resources("1", "2", "1Gi", "4Gi"),
        },
    }


def resources(cpu: str, cpu_limit: str, memory: str, memory_limit: str) -> dict[str, Any]:
    """Requests that fit one 2-core node (the chart's defaults ask for 3.75 cores, 21 GiB)."""
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


def ingest_key(url: str, admin_key: str, name: str) -> dict[str, str]:
    """A key for GROUP that may ingest and query, made with the bootstrap admin key; its auth
    header."""
    created = httpx.post(
        f"{url}/admin/keys",
        json={"name": name, "groups": [GROUP], "roles": ["ingest", "query"]},
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30.0,
    )
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['key']}"}


def ingest_document(url: str, auth: dict[str, str]) -> None:
    """Upload DOCUMENT for GROUP and wait for its job to succeed."""
    with DOCUMENT.open("rb") as handle:
        uploaded = httpx.post(
            f"{url}/v1/documents",
            files=[("files", (DOCUMENT.name, handle, "text/markdown"))],
            data={"access_groups": GROUP},
            headers=auth,
            timeout=120.0,
        )
    assert uploaded.status_code == 202, uploaded.text
    job_id = uploaded.json()["job_id"]
    deadline = time.monotonic() + 240
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = httpx.get(f"{url}/v1/jobs/{job_id}", headers=auth, timeout=30.0).json()
        if job.get("status") in {"succeeded", "partial", "failed"}:
            break
        time.sleep(1)
    assert job.get("status") == "succeeded", job


def ask_cited(url: str, auth: dict[str, str]) -> dict[str, Any]:
    """The demo question through the gateway: a non-refused answer citing DOCUMENT only; the
    response body, with the seconds it took as `_seconds`."""
    started = time.monotonic()
    answered = httpx.post(
        f"{url}/v1/query", json={"question": DEMO_QUESTION}, headers=auth, timeout=240.0
    )
    seconds = time.monotonic() - started
    assert answered.status_code == 200, answered.text
    body: dict[str, Any] = answered.json()
    assert not body["refused"], body
    assert body["answer"].strip(), body
    cited = [c for c in body["citations"] if c["cited"]]
    assert cited, body
    assert all(DOCUMENT.name in c["source"] for c in cited), body["citations"]
    print(f"answer in {seconds:.1f} s: {body['answer']!r}; cited: {[c['source'] for c in cited]}")
    return {**body, "_seconds": seconds}


@contextmanager
def serving_registry(root: Path, port: int) -> Iterator[str]:
    """A CNCF Distribution registry (scripts/install-services.sh builds it) on 127.0.0.1:port,
    plain HTTP, its storage under ``root``; yields host:port."""
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yml").write_text(yaml.safe_dump(config))
    log_path = root / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(REPO / ".venv" / "bin" / "registry"), "serve", str(root / "config.yml")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"registry did not start: {log_path.read_text()[-500:]}")
                time.sleep(0.2)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def push(archive: Path, reference: str) -> None:
    """An OCI archive into a plain-HTTP registry with skopeo, its manifest digest unchanged."""
    done = subprocess.run(
        [
            "skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false",
            f"oci-archive:{archive}", f"docker://{reference}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
