"""The model layer against the real Ollama and gateway: embeddings through each provider path,
fallback when the primary's server is down, hot swap under load, and invalid files refused."""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from gateway.bundle.minilm_folder import minilm_folder
from gateway.cli.models import models_app
from gateway.container import embedder_for
from gateway.models.config import ModelEntry, ModelInfo
from services.errors import EmbedderUnavailableError, ModelUnavailableError
from services.litellm_router import LiteLLMRouter
from services.ollama_embedder import OllamaEmbedder
from services.onnx_embedder import resolve_models_dir
from services.openai_embedder import OpenAIEmbedder
from services.records import ChatMessage
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.tcp_proxy import TcpProxy
from tests.integration.test_query_policy import sse_events

pytestmark = pytest.mark.integration

ALT_MODEL = "holdfast-alt"
MINILM = "all-minilm-packaged"
TEXTS = ["annual leave request", "holiday allowance for staff", "tungsten boiling point"]
QUESTION = "How many days of paid annual leave do full-time employees receive?"
UNREACHABLE = f"http://127.0.0.1:{PORT_BASE + 49}"  # nothing listens here


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _chat(model: str, api_base: str, **extra: object) -> dict[str, object]:
    return {
        "model": f"ollama_chat/{model}",
        "api_base": api_base,
        "timeout": 240,
        "max_retries": 0,
        "max_tokens": 8,
        "temperature": 0.0,
        **extra,
    }


def _models_yaml(live: LiveStack, chat: dict[str, object], **extra: object) -> str:
    body: dict[str, object] = {
        "model_list": [
            {"model_name": "chat-default", "litellm_params": chat},
            {
                "model_name": "embed-default",
                "litellm_params": {
                    "model": "local/all-MiniLM-L6-v2",
                    "timeout": 30,
                    "max_retries": 0,
                },
                "model_info": {"mode": "embedding"},
            },
            *extra.get("more", []),  # type: ignore[misc]
        ]
    }
    if "router_settings" in extra:
        body["router_settings"] = extra["router_settings"]
    return yaml.safe_dump(body, sort_keys=False)


@pytest.fixture(scope="module")
def ollama_minilm(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """all-MiniLM-L6-v2 imported into the test Ollama from a safetensors folder, rebuilt from the
    installed ONNX export (the weights the in-process ``local/all-MiniLM-L6-v2`` runs).

    Through the create API with each file's relative path: Ollama 0.12.6's CLI flattens the
    nested ``1_Pooling/config.json`` that its BERT converter needs."""
    base = live_stack.settings.ollama.base_url
    folder = minilm_folder(resolve_models_dir(os.environ), tmp_path_factory.mktemp("minilm"))
    files: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".json", ".safetensors", ".txt"}:
            data = path.read_bytes()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            httpx.post(f"{base}/api/blobs/{digest}", content=data, timeout=120).raise_for_status()
            files[str(path.relative_to(folder))] = digest
    response = httpx.post(
        f"{base}/api/create",
        json={"model": MINILM, "files": files, "stream": False},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    return MINILM


@pytest.fixture(scope="module")
def alt_model(live_stack: LiveStack) -> str:
    """A second Ollama model from the same GGUF, with another name and system prompt."""
    base = live_stack.settings.ollama.base_url
    response = httpx.post(
        f"{base}/api/create",
        json={
            "model": ALT_MODEL,
            "from": live_stack.settings.ollama.chat_model,
            "system": "You are the alternate Holdfast model.",
            "stream": False,
        },
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return ALT_MODEL


@pytest.fixture
def models_file(live_stack: LiveStack) -> Iterator[Path]:
    """The live models.yaml; restored (and reloaded) after the test."""
    path = live_stack.settings.models_path
    original = path.read_text(encoding="utf-8")
    yield path
    path.write_text(original, encoding="utf-8")
    _reload(live_stack)


def _reload(live: LiveStack) -> httpx.Response:
    return httpx.post(
        f"{live.url}/admin/reload",
        headers={"Authorization": f"Bearer {live.admin_key}"},
        timeout=300,
    )


def test_embeddings_through_ollama_embed_api_and_openai_compatible_path(
    live_stack: LiveStack, ollama_minilm: str
) -> None:
    ol = live_stack.settings.ollama
    native = OllamaEmbedder(ol.base_url, ollama_minilm, timeout_s=60, max_retries=0, batch_size=2)
    compat = OpenAIEmbedder(f"{ol.base_url}/v1", ollama_minilm, timeout_s=60, max_retries=0)
    a, b = native.embed_documents(TEXTS), compat.embed_documents(TEXTS)
    assert len(a) == len(b) == 3  # two batches of the native path put back in order
    assert native.dimensions == compat.dimensions == 384
    in_process = live_stack.components.embedder.embed_documents(TEXTS)
    for x, y, z in zip(a, b, in_process, strict=True):  # the same model on three paths
        assert _cosine(x, y) > 0.999
        assert _cosine(x, z) > 0.99
    assert _cosine(a[0], a[1]) > _cosine(a[0], a[2])
    assert native.health().ok and compat.health().ok
    native.close()
    compat.close()


def test_embedding_server_down_is_a_clear_embedder_error(live_stack: LiveStack) -> None:
    embedder = OllamaEmbedder(UNREACHABLE, MINILM, timeout_s=2, max_retries=1)
    with pytest.raises(
        EmbedderUnavailableError, match=r"ollama embeddings \(all-minilm-packaged\)"
    ):
        embedder.embed_query("annual leave")


def test_embeddings_through_the_in_process_model(live_stack: LiveStack) -> None:
    entry = ModelEntry(
        model_name="embed-default",
        litellm_params={"model": "local/all-MiniLM-L6-v2", "timeout": 30, "max_retries": 0},
        model_info=ModelInfo(mode="embedding"),
    )
    embedder = embedder_for(entry)
    leave, holiday, metal = embedder.embed_documents(TEXTS)
    assert embedder.dimensions == len(leave) == 384
    assert _cosine(leave, holiday) > _cosine(leave, metal)


def test_fallback_answers_when_the_primary_server_is_down(live_stack: LiveStack) -> None:
    ol = live_stack.settings.ollama
    router = LiteLLMRouter(
        [
            {"model_name": "chat-default", "litellm_params": _chat(ol.chat_model, UNREACHABLE)},
            {"model_name": "chat-backup", "litellm_params": _chat(ol.chat_model, ol.base_url)},
        ],
        fallbacks={"chat-default": ["chat-backup"]},
    )
    started = time.monotonic()
    completion = router.complete("chat-default", [ChatMessage("user", "Say hello.")])
    assert completion.fallback_used is True
    assert completion.alias == "chat-backup"
    assert completion.model == f"ollama_chat/{ol.chat_model}"
    assert completion.text.strip()
    assert time.monotonic() - started < 120
    direct = router.complete("chat-backup", [ChatMessage("user", "Say hello.")])
    assert direct.fallback_used is False and direct.alias == "chat-backup"


def _query(live: LiveStack) -> httpx.Response:
    # one passage of context keeps each CPU answer short on a shared machine
    return live.post("/v1/query", {"question": QUESTION, "top_k": 1}, live.handbook_key)


def test_hot_swap_under_concurrent_queries_fails_nothing_and_switches_model(
    live_stack: LiveStack, alt_model: str, models_file: Path
) -> None:
    ol = live_stack.settings.ollama
    old_model, new_model = f"ollama_chat/{ol.chat_model}", f"ollama_chat/{alt_model}"
    models_file.write_text(_models_yaml(live_stack, _chat(ol.chat_model, ol.base_url)))
    assert _reload(live_stack).status_code == 200

    results: list[tuple[float, int, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            response = _query(live_stack)
            model = response.json().get("model") if response.status_code == 200 else None
            results.append((time.monotonic(), response.status_code, model))

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 400
        while sum(1 for r in results if r[2] == old_model) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        models_file.write_text(_models_yaml(live_stack, _chat(alt_model, ol.base_url)))
        reload = _reload(live_stack)
        assert reload.status_code == 200, reload.text
        swapped_at = time.monotonic()
        while sum(1 for r in results if r[2] == new_model) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=300)

    failures = [r for r in results if r[1] != 200]
    assert not failures, failures
    assert len(results) >= 4
    assert {r[2] for r in results} == {old_model, new_model}
    # once the swap returned, no request that finished later came from a set older than it
    # by more than one in-flight answer per client
    late_old = [r for r in results if r[0] > swapped_at and r[2] == old_model]
    assert len(late_old) <= len(threads)
    assert results[-1][2] == new_model
    changes = httpx.get(
        f"{live_stack.url}/admin/model-changes",
        headers={"Authorization": f"Bearer {live_stack.admin_key}"},
        timeout=10,
    ).json()
    swap = next(c for c in changes if c["outcome"] == "swapped")
    assert swap["changes"] == {"chat-default": "changed"}
    assert swap["actor"] in {"admin", "system"} and swap["trigger"] in {"api", "watch"}


def test_invalid_models_file_gets_422_and_old_models_keep_answering(
    live_stack: LiveStack, alt_model: str, models_file: Path
) -> None:
    ol = live_stack.settings.ollama
    models_file.write_text(_models_yaml(live_stack, _chat(alt_model, ol.base_url)))
    assert _reload(live_stack).status_code == 200
    broken = _chat(ol.chat_model, ol.base_url)
    del broken["timeout"]
    models_file.write_text(_models_yaml(live_stack, broken))
    response = _reload(live_stack)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "invalid_config_file"
    assert "chat-default: litellm_params.timeout must be a positive number" in body["detail"]
    answer = _query(live_stack)
    assert answer.status_code == 200 and answer.json()["model"] == f"ollama_chat/{alt_model}"
    # a file that validates but whose model does not answer is refused by the probe
    models_file.write_text(_models_yaml(live_stack, _chat(ol.chat_model, UNREACHABLE)))
    probe = _reload(live_stack)
    assert probe.status_code == 422
    assert "probe of alias 'chat-default' failed" in probe.json()["detail"]
    rejected = httpx.get(
        f"{live_stack.url}/admin/model-changes",
        headers={"Authorization": f"Bearer {live_stack.admin_key}"},
        timeout=10,
    ).json()[0]
    assert rejected["outcome"] == "rejected" and "probe" in rejected["detail"]
    # only admins may reload
    denied = httpx.post(
        f"{live_stack.url}/admin/reload",
        headers={"Authorization": f"Bearer {live_stack.handbook_key}"},
        timeout=10,
    )
    assert denied.status_code == 403


def test_gateway_answers_through_the_fallback_when_the_primary_server_stops(
    live_stack: LiveStack, alt_model: str, models_file: Path
) -> None:
    ol = live_stack.settings.ollama
    proxy = TcpProxy(PORT_BASE + 48, ol.port).start()
    try:
        models_file.write_text(
            _models_yaml(
                live_stack,
                _chat(ol.chat_model, proxy.url),
                more=[
                    {"model_name": "chat-backup", "litellm_params": _chat(alt_model, ol.base_url)}
                ],
                router_settings={"fallbacks": [{"chat-default": ["chat-backup"]}]},
            )
        )
        assert _reload(live_stack).status_code == 200
        first = _query(live_stack)
        assert first.json()["model"] == f"ollama_chat/{ol.chat_model}"
    finally:
        proxy.stop()  # the primary's server is gone
    response = _query(live_stack)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == f"ollama_chat/{alt_model}"


def test_stream_falls_back_before_the_first_token_and_says_so(
    live_stack: LiveStack, alt_model: str, models_file: Path
) -> None:
    ol = live_stack.settings.ollama
    # the primary is loaded while its server answers (the reload probes it), then stopped
    proxy = TcpProxy(PORT_BASE + 47, ol.port).start()
    try:
        models_file.write_text(
            _models_yaml(
                live_stack,
                _chat(ol.chat_model, proxy.url),
                more=[
                    {"model_name": "chat-backup", "litellm_params": _chat(alt_model, ol.base_url)}
                ],
                router_settings={"fallbacks": [{"chat-default": ["chat-backup"]}]},
            )
        )
        assert _reload(live_stack).status_code == 200
    finally:
        proxy.stop()
    with httpx.stream(
        "POST",
        f"{live_stack.url}/v1/query",
        json={"question": QUESTION, "top_k": 1, "stream": True},
        headers={"Authorization": f"Bearer {live_stack.handbook_key}"},
        timeout=300,
    ) as response:
        assert response.status_code == 200
        events = sse_events(response)
    names = [n for n, _ in events]
    assert "error" not in names, events
    assert names[0] == "retrieval" and names[-1] == "done" and "token" in names
    done = events[-1][1]
    assert done["fallback_used"] is True
    assert done["alias"] == "chat-backup"
    assert done["model"] == f"ollama_chat/{alt_model}"


def test_router_stream_falls_back_and_a_dead_chain_raises(live_stack: LiveStack) -> None:
    ol = live_stack.settings.ollama
    router = LiteLLMRouter(
        [
            {"model_name": "chat-default", "litellm_params": _chat(ol.chat_model, UNREACHABLE)},
            {"model_name": "chat-backup", "litellm_params": _chat(ol.chat_model, ol.base_url)},
        ],
        fallbacks={"chat-default": ["chat-backup"]},
    )
    stream = router.stream("chat-default", [ChatMessage("user", "Say hello.")])
    text = "".join(stream)
    assert text.strip()
    assert stream.fallback_used is True and stream.alias == "chat-backup"
    assert stream.model == f"ollama_chat/{ol.chat_model}"
    alone = router.stream("chat-default", [ChatMessage("user", "hi")], use_fallbacks=False)
    with pytest.raises(ModelUnavailableError):
        next(alone)


def test_models_cli_check_probes_a_file_and_list_shows_health(
    live_stack: LiveStack, alt_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ol = live_stack.settings.ollama
    monkeypatch.setenv("HOLDFAST_HOME", str(live_stack.settings.home))
    monkeypatch.setenv("HOLDFAST_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("HOLDFAST_OLLAMA__PORT", str(ol.port))
    good = tmp_path / "good.yaml"
    good.write_text(_models_yaml(live_stack, _chat(alt_model, ol.base_url)))
    runner = CliRunner()
    result = runner.invoke(models_app, ["check", str(good)])
    assert result.exit_code == 0, result.output
    assert "probed: chat-default, embed-default" in " ".join(result.output.split())
    bad = tmp_path / "bad.yaml"
    bad.write_text(_models_yaml(live_stack, _chat(alt_model, UNREACHABLE)))
    result = runner.invoke(models_app, ["check", str(bad)])
    assert result.exit_code == 1
    assert "probe of alias 'chat-default' failed" in " ".join(result.output.split())
    public = tmp_path / "public.yaml"
    public.write_text(_models_yaml(live_stack, _chat(alt_model, "https://llm.example.com")))
    result = runner.invoke(models_app, ["check", str(public), "--no-probe"])
    assert result.exit_code == 1 and "(air gap)" in " ".join(result.output.split())
    listing = runner.invoke(models_app, ["list"])
    assert listing.exit_code == 0, listing.output
    assert "chat-default" in listing.output and "up" in listing.output


def test_the_llm_server_reports_the_release_it_was_built_from(live_stack: LiveStack) -> None:
    """The build links the pinned tag in as the version (a plain ``go install`` says 0.0.0)."""
    script = (Path(__file__).parents[2] / "scripts" / "install-services.sh").read_text()
    pinned = re.search(r'^OLLAMA_VERSION="v(?P<v>[^"]+)"', script, re.M)
    assert pinned is not None
    response = httpx.get(f"{live_stack.settings.ollama.base_url}/api/version", timeout=10.0)
    assert response.status_code == 200
    assert response.json()["version"] == pinned["v"]
