"""`holdfast reindex` against the real stack: the golden corpus re-embedded into a shadow
collection while searches keep answering, the quality gate refusing a worse embedding model (and
`--force` overriding it, audited), writes during a reindex re-synced, and a query whose embedding
model has no index failing fast with the reindex hint. The tests run in order and share state;
the last one puts the stack back on the packaged MiniLM model."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner
from weaviate.classes.config import DataType, Property, Tokenization
from weaviate.util import generate_uuid5

from gateway.cli.main import app
from gateway.container import build_store
from gateway.models.config import PACKAGED_EMBEDDER
from gateway.models.reindex import ReindexRefusedError, reindex
from gateway.security.keys import KeyStore
from gateway.security.secrets import id_key
from ingestion.identity import Identity, legacy_doc_id
from ingestion.pipeline import ChunkingPolicy, IngestReport, ingest_files
from services.errors import ConfigError
from services.onnx_embedder import ONNX_MODELS, resolve_models_dir
from services.records import SearchHit
from services.weaviate_common import IndexModelMismatchError
from services.weaviate_common import schema_description as _schema_description
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
# The ONNX MiniLM that serves local/all-MiniLM-L6-v2, named by another model id: equal vectors.
COPY_MODEL = "onnx/all-minilm-l6-v2"
# bge-small-en-v1.5 (int8) whose tokenizer keeps only each text's first word: a real but much
# worse retriever, from its own models_dir. (Ollama 0.12.6 refuses /api/embed for the Gemma chat
# model: "this model does not support embeddings".)
TRUNCATED_MODEL = "onnx/bge-small-en-v1.5-q"
TRUNCATED_DIR: list[Path] = []
QUESTION = "What does error GG-419 mean?"


def _embed(model: str, **params: Any) -> dict[str, Any]:
    return {"model": model, "timeout": 60, "max_retries": 0, **params}


def _models_yaml(live: LiveStack, *, embed_default: str = PACKAGED_EMBEDDER) -> str:
    ol = live.settings.ollama
    default = _embed(embed_default)
    entries = [
        {
            "model_name": "chat-default",
            "litellm_params": {
                "model": f"ollama_chat/{ol.chat_model}",
                "api_base": ol.base_url,
                "timeout": 240,
                "max_retries": 0,
                "max_tokens": 8,
            },
        },
        {"model_name": "embed-default", "litellm_params": default},
        {"model_name": "embed-copy", "litellm_params": _embed(COPY_MODEL)},
        {"model_name": "embed-original", "litellm_params": _embed(PACKAGED_EMBEDDER)},
        {
            "model_name": "embed-truncated",
            "litellm_params": _embed(TRUNCATED_MODEL, models_dir=str(TRUNCATED_DIR[0])),
        },
    ]
    for entry in entries[1:]:
        entry["model_info"] = {"mode": "embedding"}
    return str(yaml.safe_dump({"model_list": entries}, sort_keys=False))


def _reload(live: LiveStack) -> httpx.Response:
    return httpx.post(
        f"{live.url}/admin/reload",
        headers={"Authorization": f"Bearer {live.admin_key}"},
        timeout=300,
    )


def _changes(live: LiveStack) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{live.url}/admin/model-changes",
        headers={"Authorization": f"Bearer {live.admin_key}"},
        timeout=10,
    )
    changes: list[dict[str, Any]] = response.json()
    return changes


def _first_word_model(models_dir: Path) -> Path:
    """A models dir holding the installed bge-small-en-v1.5-q with its tokenizer cut down to each
    text's first word (a ``Replace`` normaliser in front of BERT's); the model file is linked."""
    spec = ONNX_MODELS[TRUNCATED_MODEL.removeprefix("onnx/")]
    source = resolve_models_dir(os.environ) / spec.name
    folder = models_dir / spec.name
    folder.mkdir()
    (folder / spec.model_file).symlink_to(source / spec.model_file)
    tokenizer = json.loads((source / spec.tokenizer_file).read_text(encoding="utf-8"))
    first_word = [
        {"type": "Replace", "pattern": {"Regex": "^\\s+"}, "content": ""},
        {"type": "Replace", "pattern": {"Regex": "\\s[\\s\\S]*"}, "content": ""},
    ]
    tokenizer["normalizer"] = {
        "type": "Sequence",
        "normalizers": [*first_word, tokenizer["normalizer"]],
    }
    (folder / spec.tokenizer_file).write_text(json.dumps(tokenizer), encoding="utf-8")
    return models_dir


@pytest.fixture(scope="module")
def golden_key(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The golden corpus indexed with MiniLM, models.yaml with the extra embedding aliases, and
    a query key; afterwards the original models.yaml is restored."""
    TRUNCATED_DIR[:] = [_first_word_model(tmp_path_factory.mktemp("first-word"))]
    c = live_stack.components
    chunking = live_stack.settings.chunking
    report = ingest_files(
        sorted((GOLDEN / "corpus").glob("*.md")),
        groups=["golden"],
        store=c.store,
        embedder=c.embedder,
        redactor=c.redactor,
        policy=ChunkingPolicy(chunking.max_tokens, chunking.overlap_tokens),
        identity=Identity(id_key(live_stack.settings)),
    )
    assert report.rejected == 0
    path = live_stack.settings.models_path
    original = path.read_text(encoding="utf-8")
    path.write_text(_models_yaml(live_stack), encoding="utf-8")
    loaded = _reload(live_stack)
    assert loaded.status_code == 200, loaded.text
    _, key = KeyStore(live_stack.settings.keys_db).create(
        "reindexer", groups=["golden"], roles=["query"]
    )
    yield key
    path.write_text(original, encoding="utf-8")
    _reload(live_stack)


@pytest.fixture
def cli(live_stack: LiveStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    s = live_stack.settings
    monkeypatch.setenv("HOLDFAST_HOME", str(s.home))
    monkeypatch.setenv("HOLDFAST_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.setenv("HOLDFAST_WEAVIATE__HTTP_PORT", str(s.weaviate.http_port))
    monkeypatch.setenv("HOLDFAST_WEAVIATE__GRPC_PORT", str(s.weaviate.grpc_port))
    monkeypatch.setenv("HOLDFAST_OLLAMA__PORT", str(s.ollama.port))
    return CliRunner()


def _run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, ["reindex", *args])
    print(result.output)  # the scores table, for the record (pytest -rP shows it)
    return result.exit_code, " ".join(result.output.split())


class Searcher:
    """Asks /v1/search in a loop from a thread; counts failures and empty answers."""

    def __init__(self, live: LiveStack, key: str) -> None:
        self._live, self._key = live, key
        self.done = self.failures = self.empty = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            response = self._live.post("/v1/search", {"query": QUESTION, "top_k": 5}, self._key)
            self.done += 1
            if response.status_code != 200:
                self.failures += 1
                self.errors.append(response.text[:300])
            elif not response.json()["results"]:
                self.empty += 1
            time.sleep(0.7)  # below the key's rate limit (120 a minute), so a 429 is a failure

    def __enter__(self) -> Searcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _memo(folder: Path, name: str, animal: str) -> Path:
    path = folder / f"{name}.md"
    path.write_text(
        f"# {animal.title()} relocation memo\n\nThe {animal} enclosure moves to building K on "
        f"3 March. Keepers collect new badges from the {animal} office before the move.\n",
        encoding="utf-8",
    )
    return path


def test_writes_during_a_reindex_are_resynced_and_a_running_job_blocks_it(
    live_stack: LiveStack, golden_key: str, tmp_path: Path
) -> None:
    c = live_stack.components
    store = c.store
    before = store.alias_target()
    with pytest.raises(ReindexRefusedError, match="ingest job job-7"):
        reindex(
            store,
            c.embedder,
            embedding_model=PACKAGED_EMBEDDER,
            jobs_busy=lambda: "job-7",
            identity=Identity(id_key(live_stack.settings)),
            batch_size=16,
        )
    assert store.alias_target() == before
    chunking = live_stack.settings.chunking

    def ingest(path: Path) -> IngestReport:
        return ingest_files(
            [path],
            groups=["late-arrivals"],
            store=store,
            embedder=c.embedder,
            redactor=c.redactor,
            policy=ChunkingPolicy(chunking.max_tokens, chunking.overlap_tokens),
            identity=Identity(id_key(live_stack.settings)),
        )

    early = ingest(_memo(tmp_path, "early-memo", "quokka"))
    early_doc = early.files[0].doc_id
    assert early_doc and early.chunks > 0
    total: list[int] = []
    done: list[int] = []
    late: list[IngestReport] = []

    def write_after_the_copy(n: int) -> None:
        """Once every chunk that existed has been copied: one deletion, one new document."""
        done.append(n)
        if sum(done) >= total[0] and not late:
            store.delete_document(str(early_doc))  # already copied: only a re-sync removes it
            late.append(ingest(_memo(tmp_path, "late-memo", "wombat")))

    result = reindex(
        store,
        c.embedder,
        embedding_model=PACKAGED_EMBEDDER,
        jobs_busy=lambda: None,
        identity=Identity(id_key(live_stack.settings)),
        batch_size=16,
        on_total=total.append,
        on_progress=write_after_the_copy,
    )
    assert late and late[0].chunks > 0
    assert result.switched and store.alias_target() == result.shadow != before
    assert result.resynced >= early.chunks
    assert store.count_in(result.shadow) == store.count_in(result.source)
    hits = store.search(
        groups=["late-arrivals"],
        query="enclosure relocation memo",
        vector=c.embedder.embed_query("enclosure relocation memo"),
        limit=10,
        alpha=0.5,
    )
    texts = " ".join(h.chunk.text for h in hits)
    assert "wombat" in texts and "quokka" not in texts


def test_reindex_to_an_equal_model_passes_the_gate_while_search_never_fails(
    live_stack: LiveStack, golden_key: str, cli: CliRunner
) -> None:
    store = live_stack.components.store
    before = store.alias_target()
    with Searcher(live_stack, golden_key) as searcher:
        time.sleep(1)
        code, output = _run(cli, "--alias", "embed-copy", "--golden", str(GOLDEN / "golden.jsonl"))
        time.sleep(3)  # past the switch: the gateway (still on the old model id) keeps answering
    assert code == 0, output
    assert "switched:" in output and "ndcg@10" in output and "recall@10" in output
    assert searcher.done >= 5 and searcher.failures == 0 and searcher.empty == 0, searcher.errors
    live = store.live_record()
    assert live is not None and live.embedding_model == COPY_MODEL and live.name != before
    assert store.count_in(live.name) == store.count_in(str(before))
    latest = _changes(live_stack)[0]
    assert latest["trigger"] == "reindex" and latest["outcome"] == "swapped"
    # the live index records the new model now, so the gateway may switch to it
    path = live_stack.settings.models_path
    path.write_text(_models_yaml(live_stack, embed_default=COPY_MODEL), encoding="utf-8")
    response = _reload(live_stack)
    assert response.status_code == 200, response.text
    after = live_stack.post("/v1/search", {"query": QUESTION, "top_k": 5}, golden_key)
    assert after.status_code == 200 and after.json()["results"]


def test_gate_refuses_a_worse_model_prints_both_scores_and_force_is_audited(
    live_stack: LiveStack, golden_key: str, cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a model that reads one word per text drops nDCG@10 well past the default 0.02; a tighter
    # margin keeps the refusal clear when other test modules' documents share the index
    monkeypatch.setenv("HOLDFAST_REINDEX__MAX_DROP_NDCG", "0.01")
    store = live_stack.components.store
    before = store.alias_target()
    golden = str(GOLDEN / "golden.jsonl")
    code, output = _run(cli, "--alias", "embed-truncated", "--golden", golden)
    assert code == 2, output
    assert "cutover refused" in output and "drops by" in output
    assert "live" in output and "shadow" in output and "ndcg@10" in output
    assert store.alias_target() == before
    assert _changes(live_stack)[0]["outcome"] == "rejected"
    code, output = _run(cli, "--alias", "embed-truncated", "--golden", golden, "--force")
    assert code == 0, output
    assert "forced past the quality gate" in output
    live = store.live_record()
    assert live is not None and live.embedding_model == TRUNCATED_MODEL
    forced = _changes(live_stack)[0]
    assert forced["trigger"] == "reindex" and forced["outcome"] == "forced"
    assert "gate overridden" in forced["detail"]
    # the gateway still embeds with the copy model: it reads the kept collection meanwhile
    kept = live_stack.post("/v1/search", {"query": QUESTION, "top_k": 5}, golden_key)
    assert kept.status_code == 200 and kept.json()["results"]


def test_without_an_index_for_the_configured_model_queries_fail_fast_with_the_hint(
    live_stack: LiveStack, golden_key: str, cli: CliRunner
) -> None:
    code, output = _run(cli, "--drop-old")
    assert code == 0 and "dropped:" in output, output
    started = time.monotonic()
    response = live_stack.post("/v1/search", {"query": QUESTION, "top_k": 5}, golden_key)
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    problem = response.json()
    assert problem["code"] == "index_model_mismatch"
    assert "holdfast reindex" in problem["detail"]
    c = live_stack.components  # this process embeds with the packaged model: refused too
    with pytest.raises(IndexModelMismatchError, match="holdfast reindex"):
        c.store.search(
            groups=["golden"],
            query=QUESTION,
            vector=c.embedder.embed_query(QUESTION),
            limit=3,
            alpha=0.5,
        )
    with pytest.raises(ConfigError, match="live collection"):
        c.store.drop_index(str(c.store.alias_target()))
    # back to the packaged model: a better model passes the gate, then the gateway follows
    code, output = _run(cli, "--alias", "embed-original", "--golden", str(GOLDEN / "golden.jsonl"))
    assert code == 0, output
    live_stack.settings.models_path.write_text(_models_yaml(live_stack), encoding="utf-8")
    assert _reload(live_stack).status_code == 200
    response = live_stack.post("/v1/search", {"query": QUESTION, "top_k": 5}, golden_key)
    assert response.status_code == 200 and response.json()["results"]
    code, output = _run(cli, "--rollback")
    assert code == 0 and "now points at" in output, output
    code, output = _run(cli, "--rollback")  # and forward again: both are kept
    assert code == 0, output
    live = c.store.live_record()
    assert live is not None and live.embedding_model == PACKAGED_EMBEDDER


def test_a_pre_alias_collection_is_refused_at_start_and_migrated_by_reindex(
    live_stack: LiveStack,
) -> None:
    name = f"LegacyChunk{os.getpid()}"
    wv = live_stack.settings.weaviate.model_copy(update={"collection": name})
    store = build_store(live_stack.settings.model_copy(update={"weaviate": wv}))
    embedder = live_stack.components.embedder
    store.warm_up()
    try:
        # an install from before aliases: a plain collection under the configured name
        store._create_physical(name, _schema_description(PACKAGED_EMBEDDER, embedder.dimensions))
        texts = ["Badges are renewed every spring.", "The canteen opens at eight."]
        rows = [
            (
                generate_uuid5(f"c{i}"),
                {"chunk_id": f"c{i}", "doc_id": "d1", "text": t, "access_groups": ["legacy"]},
                embedder.embed_query(t),
            )
            for i, t in enumerate(texts)
        ]
        # and a chunk with the unkeyed ids of releases before keyed ids: the copy moves it to
        # keyed ones (the post-switch re-sync once deleted every chunk so moved)
        parking = "Parking permits are renewed in March."
        unkeyed = {
            "chunk_id": "unkeyed-0",
            "doc_id": legacy_doc_id("parking.md"),
            "source": "parking.md",
            "section": "Permits",
            "position": 0,
            "text": parking,
            "access_groups": ["legacy"],
        }
        rows.append((generate_uuid5("unkeyed-0"), unkeyed, embedder.embed_query(parking)))
        store.insert_raw(name, rows)
        with pytest.raises(ConfigError, match="holdfast reindex"):
            store.ensure_schema(embedding_model=PACKAGED_EMBEDDER, dimensions=embedder.dimensions)
        result = reindex(
            store,
            embedder,
            embedding_model=PACKAGED_EMBEDDER,
            jobs_busy=lambda: None,
            identity=Identity(id_key(live_stack.settings)),
            batch_size=64,
        )
        assert result.source == name and result.chunks == 3 and result.switched
        assert result.rekeyed == 1
        assert store.alias_target() == f"{name}_1"
        assert store.count() == 3, "a chunk moved to keyed ids was lost in the migration"

        def legacy_hits(question: str) -> list[SearchHit]:
            vector = embedder.embed_query(question)
            return store.search(
                groups=["legacy"], query=question, vector=vector, limit=2, alpha=0.5
            )

        moved = legacy_hits("parking permits")
        assert moved and moved[0].chunk.text == parking
        assert moved[0].chunk.chunk_id != "unkeyed-0"
        store.ensure_schema(embedding_model=PACKAGED_EMBEDDER, dimensions=embedder.dimensions)
        hits = legacy_hits("badge renewal")
        assert hits and hits[0].chunk.chunk_id == "c0"
    finally:
        client = store._live
        client.alias.delete(alias_name=name)
        for record in store.index_records():
            client.collections.delete(record.name)
        store.close()


def test_a_collection_from_before_a_property_existed_gets_it_at_start(
    live_stack: LiveStack,
) -> None:
    """Chunks record their redaction profile in a property added after collections existed:
    ensure_schema adds it to the live collection, so a new write can carry it."""
    name = f"OldSchemaChunk{os.getpid()}"
    wv = live_stack.settings.weaviate.model_copy(update={"collection": name})
    store = build_store(live_stack.settings.model_copy(update={"weaviate": wv}))
    embedder = live_stack.components.embedder
    store.warm_up()
    client = store._live
    try:
        client.collections.create(
            f"{name}_1",
            description=_schema_description(PACKAGED_EMBEDDER, embedder.dimensions),
            properties=[
                Property(name=p, data_type=DataType.TEXT, tokenization=Tokenization.FIELD)
                for p in ("chunk_id", "doc_id", "text", "source")
            ],
        )
        client.alias.create(alias_name=name, target_collection=f"{name}_1")
        store.ensure_schema(embedding_model=PACKAGED_EMBEDDER, dimensions=embedder.dimensions)
        properties = client.collections.use(f"{name}_1").config.get().properties
        assert {"redaction", "access_groups", "file_hash"} <= {p.name for p in properties}
        store.ensure_schema(embedding_model=PACKAGED_EMBEDDER, dimensions=embedder.dimensions)
    finally:
        client.alias.delete(alias_name=name)
        client.collections.delete(f"{name}_1")
        store.close()
