"""OnnxEmbedder's own logic (tokenising, batching, pooling, normalising, prefixes, errors) with a
real ``tokenizers`` tokenizer built here and a tiny fake ``onnxruntime`` module (session options
and a session) in place of the runtime and a model, so these run without onnxruntime installed.
The real models are exercised in tests/integration/test_onnx_embedder.py."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from services.errors import ConfigError, EmbedderUnavailableError
from services.onnx_embedder import (
    ONNX_MODELS,
    OnnxEmbedder,
    OnnxModelSpec,
    onnx_embedder,
    pool,
    resolve_models_dir,
)

pytestmark = pytest.mark.unit

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = ["query", ":", "passage", "find", "the", "sort", "function", "list", "dict", "keys"]
VOCAB = {token: i for i, token in enumerate(SPECIAL + WORDS)}
DIM = len(VOCAB)
PAD, CLS = VOCAB["[PAD]"], VOCAB["[CLS]"]


class FakeSession:
    """Stands in for onnxruntime.InferenceSession: position 0 (the [CLS] slot) carries the first
    word's one-hot vector, every other position its own token's; padding positions carry a huge
    vector, so any pooling that lets padding in is visible."""

    instances: list[FakeSession] = []  # noqa: RUF012 (test registry)
    fail_with: Exception | None = None

    def __init__(self, path: str, sess_options: Any = None, providers: Any = None):
        self.path = path
        self.options = sess_options
        self.feeds: list[dict[str, np.ndarray]] = []
        FakeSession.instances.append(self)

    def get_inputs(self) -> list[Any]:
        return [_Named(n) for n in ("input_ids", "attention_mask", "token_type_ids")]

    def get_outputs(self) -> list[Any]:
        return [_Named("last_hidden_state", ["batch", "seq", DIM])]

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if FakeSession.fail_with is not None:
            raise FakeSession.fail_with
        assert names == ["last_hidden_state"]
        self.feeds.append(feeds)
        ids = feeds["input_ids"]
        hidden = np.eye(DIM, dtype=np.float32)[ids]
        hidden[:, 0, :] = np.eye(DIM, dtype=np.float32)[ids[:, 1]]
        hidden[ids == PAD] = 1000.0
        return [hidden]


class _Named:
    def __init__(self, name: str, shape: list[Any] | None = None):
        self.name = name
        self.shape = shape or ["batch", "seq"]


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    tokenizer = Tokenizer(models.WordPiece(VOCAB, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS), ("[SEP]", VOCAB["[SEP]"])]
    )
    tokenizer.save(str(tmp_path / "tiny-tokenizer.json"))
    (tmp_path / "tiny.onnx").write_bytes(b"not read: the session is fake")
    return tmp_path


class FakeOptions:
    intra_op_num_threads = 0

    def __init__(self) -> None:
        self.config: dict[str, str] = {}

    def add_session_config_entry(self, key: str, value: str) -> None:
        self.config[key] = value


@pytest.fixture(autouse=True)
def fake_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    FakeSession.instances, FakeSession.fail_with = [], None
    fake = types.ModuleType("onnxruntime")
    fake.InferenceSession = FakeSession  # type: ignore[attr-defined]
    fake.SessionOptions = FakeOptions  # type: ignore[attr-defined]
    fake.GraphOptimizationLevel = types.SimpleNamespace(ORT_ENABLE_ALL=99)  # type: ignore[attr-defined]
    fake.ExecutionMode = types.SimpleNamespace(ORT_SEQUENTIAL=0)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "onnxruntime", fake)
    yield


def spec(**overrides: Any) -> OnnxModelSpec:
    fields: dict[str, Any] = {
        "name": "tiny",
        "model_file": "tiny.onnx",
        "tokenizer_file": "tiny-tokenizer.json",
        "pooling": "mean",
        "max_tokens": 8,
    }
    return OnnxModelSpec(**(fields | overrides))


def sent_ids(embedder: OnnxEmbedder) -> list[list[int]]:
    """Every row of input_ids the session was given, padding removed."""
    session = FakeSession.instances[-1]
    return [[int(i) for i in row if i != PAD] for f in session.feeds for row in f["input_ids"]]


def words(ids: list[int]) -> list[str]:
    names = {i: t for t, i in VOCAB.items()}
    return [names[i] for i in ids]


def test_constructor_does_no_io_and_health_says_not_loaded(tmp_path: Path) -> None:
    embedder = OnnxEmbedder(spec(), tmp_path / "absent")
    assert not embedder.health().ok
    assert embedder.max_tokens == 8
    assert FakeSession.instances == []


@pytest.mark.parametrize("missing", ["tiny.onnx", "tiny-tokenizer.json"])
def test_warm_up_names_the_missing_file(model_dir: Path, missing: str) -> None:
    (model_dir / missing).unlink()
    with pytest.raises(EmbedderUnavailableError, match=missing):
        OnnxEmbedder(spec(), model_dir).warm_up()


def test_warm_up_loads_once_with_the_configured_thread_count(model_dir: Path) -> None:
    embedder = OnnxEmbedder(spec(), model_dir, intra_op_threads=3)
    embedder.warm_up()
    embedder.warm_up()
    assert len(FakeSession.instances) == 1
    assert FakeSession.instances[0].options.intra_op_num_threads == 3
    assert FakeSession.instances[0].options.config == {
        "session.intra_op.allow_spinning": "0",  # idle pool threads sleep (#19 profile)
        "session.inter_op.allow_spinning": "0",
    }
    assert embedder.health().ok
    assert embedder.dimensions == DIM
    embedder.close()
    assert not embedder.health().ok


def test_cls_pooling_takes_the_first_position_and_normalises(model_dir: Path) -> None:
    embedder = OnnxEmbedder(spec(pooling="cls"), model_dir)
    (vector,) = embedder.embed_documents(["sort the list"])
    expected = np.zeros(DIM)
    expected[VOCAB["sort"]] = 1.0
    assert np.allclose(vector, expected)


def test_mean_pooling_ignores_padding_so_batch_company_does_not_change_a_vector(
    model_dir: Path,
) -> None:
    embedder = OnnxEmbedder(spec(), model_dir)
    alone = embedder.embed_documents(["dict"])[0]
    in_batch = embedder.embed_documents(["find the sort function", "dict"])[1]
    assert np.allclose(alone, in_batch, atol=1e-6)
    assert abs(np.linalg.norm(alone) - 1.0) < 1e-6
    # mean of [CLS]-slot (dict), dict, [SEP] one-hots, normalised
    expected = np.zeros(DIM)
    expected[VOCAB["dict"]], expected[VOCAB["[SEP]"]] = 2.0, 1.0
    assert np.allclose(alone, expected / np.linalg.norm(expected), atol=1e-6)


def test_pool_keeps_zero_vectors_finite() -> None:
    hidden = np.zeros((1, 3, 4), dtype=np.float32)
    mask = np.zeros((1, 3), dtype=np.int64)
    for pooling in ("cls", "mean"):
        assert np.isfinite(pool(hidden, mask, pooling)).all()  # type: ignore[arg-type]


def test_query_prefix_goes_on_queries_and_document_prefix_on_documents(model_dir: Path) -> None:
    embedder = OnnxEmbedder(
        spec(query_prefix="query: ", document_prefix="passage: ", max_tokens=16), model_dir
    )
    embedder.embed_query("sort")
    embedder.embed_documents(["dict keys"])
    query, document = sent_ids(embedder)
    assert words(query) == ["[CLS]", "query", ":", "sort", "[SEP]"]
    assert words(document) == ["[CLS]", "passage", ":", "dict", "keys", "[SEP]"]


def test_input_is_truncated_at_the_window_but_count_tokens_is_not(model_dir: Path) -> None:
    embedder = OnnxEmbedder(spec(max_tokens=6), model_dir)
    text = "find the sort function list dict keys"
    embedder.embed_documents([text])
    (row,) = sent_ids(embedder)
    assert len(row) == 6
    assert words(row)[0] == "[CLS]" and words(row)[-1] == "[SEP]"
    assert embedder.count_tokens(text) == 7


def test_batches_keep_the_callers_order_and_size(model_dir: Path) -> None:
    embedder = OnnxEmbedder(spec(pooling="cls"), model_dir, batch_size=2)
    texts = ["dict", "find the sort function", "keys", "the list", "sort"]
    vectors = embedder.embed_documents(texts)
    assert [WORDS[int(np.argmax(v)) - len(SPECIAL)] for v in vectors] == [
        "dict",
        "find",
        "keys",
        "the",
        "sort",
    ]
    batches = FakeSession.instances[0].feeds
    assert [len(f["input_ids"]) for f in batches] == [2, 2, 1]
    assert all((f["token_type_ids"] == 0).all() for f in batches)
    assert embedder.embed_documents([]) == []


def test_a_failing_run_surfaces_as_the_ports_error(model_dir: Path) -> None:
    embedder = OnnxEmbedder(spec(), model_dir)
    embedder.warm_up()
    FakeSession.fail_with = RuntimeError("onnxruntime says no")
    with pytest.raises(EmbedderUnavailableError, match="onnxruntime says no") as info:
        embedder.embed_query("sort")
    assert isinstance(info.value.__cause__, RuntimeError)


def test_models_dir_comes_from_the_environment_else_the_venv() -> None:
    assert resolve_models_dir({"HOLDFAST_MODELS_DIR": "/srv/models"}) == Path("/srv/models")
    assert resolve_models_dir({}) == Path(sys.prefix) / "share" / "holdfast-models"


def test_presets_pool_and_prefix_as_their_model_cards_say() -> None:
    bge = ONNX_MODELS["bge-small-en-v1.5-q"]
    assert (bge.pooling, bge.max_tokens, bge.document_prefix) == ("cls", 512, "")
    assert bge.query_prefix == "Represent this sentence for searching relevant passages: "
    e5 = ONNX_MODELS["e5-small-v2-q"]
    assert (e5.pooling, e5.query_prefix, e5.document_prefix) == ("mean", "query: ", "passage: ")
    minilm = ONNX_MODELS["all-minilm-l6-v2"]
    assert (minilm.pooling, minilm.max_tokens, minilm.query_prefix) == ("mean", 256, "")


def test_a_named_model_is_built_from_its_folder_and_an_unknown_name_is_a_config_error() -> None:
    embedder = onnx_embedder("bge-small-en-v1.5-q", Path("/models"), batch_size=8)
    assert embedder.spec is ONNX_MODELS["bge-small-en-v1.5-q"]
    assert embedder.max_tokens == 512
    with pytest.raises(ConfigError, match="bge-large"):
        onnx_embedder("bge-large", Path("/models"))
