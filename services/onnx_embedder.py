"""In-process embeddings with onnxruntime + Hugging Face ``tokenizers``: no torch at run time.

The model files are ONNX exports of BERT-style encoders with their ``tokenizer.json``, fetched
and sha256-checked by ``scripts/install-models.sh`` into one folder per model under the models
directory (``HOLDFAST_MODELS_DIR``, default ``<venv>/share/holdfast-models``). ``ONNX_MODELS``
describes the ones that script knows: file names, pooling, window and instruction prefixes.

Each text is tokenised (truncated at the model's window, special tokens added), run through the
encoder in batches of similar length, pooled (the [CLS] vector or the mask-weighted mean of the
token vectors) and L2-normalised, so a dot product is the cosine similarity. Questions asked at
the same time from several threads share one run (``services/coalescer.py``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from services.coalescer import Coalescer
from services.errors import ConfigError, EmbedderUnavailableError, HoldfastError
from services.records import HealthStatus

Pooling = Literal["cls", "mean"]

MODELS_DIR_ENV = "HOLDFAST_MODELS_DIR"


@dataclass(frozen=True)
class OnnxModelSpec:
    """How to run one ONNX encoder: its files (inside its folder), pooling, window and prefixes."""

    name: str
    model_file: str
    tokenizer_file: str
    pooling: Pooling
    max_tokens: int  # the window, special tokens included (as sentence-transformers counts it)
    query_prefix: str = ""
    document_prefix: str = ""
    output: str | None = None  # None: "last_hidden_state", else the first rank-3 output


_BGE_QUERY = "Represent this sentence for searching relevant passages: "

ONNX_MODELS: Mapping[str, OnnxModelSpec] = {
    spec.name: spec
    for spec in (
        # BAAI bge-small-en-v1.5: CLS pooling, 512 word-pieces, an instruction for queries only
        OnnxModelSpec(
            "bge-small-en-v1.5-q",
            "bge-small-en-v1.5-q.onnx",
            "bge-small-en-v1.5-q-tokenizer.json",
            pooling="cls",
            max_tokens=512,
            query_prefix=_BGE_QUERY,
        ),
        OnnxModelSpec(
            "bge-small-en-v1.5",
            "bge-small-en-v1.5.onnx",
            "bge-small-en-v1.5-tokenizer.json",
            pooling="cls",
            max_tokens=512,
            query_prefix=_BGE_QUERY,
        ),
        # intfloat e5-small-v2: mean pooling, "query: " / "passage: " on every input
        OnnxModelSpec(
            "e5-small-v2-q",
            "e5-small-v2-q.onnx",
            "e5-small-v2-q-tokenizer.json",
            pooling="mean",
            max_tokens=512,
            query_prefix="query: ",
            document_prefix="passage: ",
        ),
        # sentence-transformers all-MiniLM-L6-v2: mean pooling, 256 word-pieces, no prefixes
        OnnxModelSpec(
            "all-minilm-l6-v2",
            "all-minilm-l6-v2.onnx",
            "all-minilm-l6-v2-tokenizer.json",
            pooling="mean",
            max_tokens=256,
        ),
        OnnxModelSpec(
            "all-minilm-l6-v2-q",
            "all-minilm-l6-v2-q.onnx",
            "all-minilm-l6-v2-q-tokenizer.json",
            pooling="mean",
            max_tokens=256,
        ),
    )
}

DEFAULT_ONNX_MODEL = "bge-small-en-v1.5-q"


def resolve_models_dir(environ: Mapping[str, str]) -> Path:
    """The models directory: ``HOLDFAST_MODELS_DIR`` if set, else ``<venv>/share/holdfast-models``
    (the running interpreter's prefix, where ``scripts/install-models.sh`` puts them by default).
    The caller passes the environment (the composition root passes ``os.environ``)."""
    configured = environ.get(MODELS_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(sys.prefix) / "share" / "holdfast-models"


def onnx_embedder(
    name: str, models_dir: Path, *, batch_size: int = 32, intra_op_threads: int | None = None
) -> OnnxEmbedder:
    """The embedder for a model of ``ONNX_MODELS`` installed in ``models_dir/<name>`` (no I/O)."""
    spec = ONNX_MODELS.get(name)
    if spec is None:
        raise ConfigError(
            f"unknown ONNX embedding model {name!r} (known: {', '.join(ONNX_MODELS)})"
        )
    return OnnxEmbedder(
        spec, models_dir / name, batch_size=batch_size, intra_op_threads=intra_op_threads
    )


def pool(
    hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64], pooling: Pooling
) -> npt.NDArray[np.float32]:
    """One vector per row of ``hidden`` [batch, seq, dim], L2-normalised."""
    if pooling == "cls":
        vectors = hidden[:, 0, :]
    else:
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        vectors = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    normalised: npt.NDArray[np.float32] = (vectors / norms).astype(np.float32)
    return normalised


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    """onnxruntime's and tokenizers' exceptions become the port's error, chained."""
    try:
        yield
    except HoldfastError:
        raise
    except Exception as exc:  # vendor exception types (pybind11 Fail, tokenizers Exception...)
        raise EmbedderUnavailableError(f"{what}: {type(exc).__name__}: {exc}") from exc


class OnnxEmbedder:
    """Embeds on this machine's CPU with onnxruntime. Thread-safe for inference.

    The constructor does no I/O; ``warm_up`` loads the tokenizer and the model (and raises
    ``EmbedderUnavailableError`` when a file is missing or unreadable), ``close`` drops them.
    """

    def __init__(
        self,
        spec: OnnxModelSpec,
        model_dir: Path,
        *,
        batch_size: int = 32,
        intra_op_threads: int | None = None,
    ):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._spec = spec
        self._model_dir = model_dir
        self._batch_size = batch_size
        self._threads = intra_op_threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._inputs: frozenset[str] = frozenset()
        self._output: str = ""
        self._dimensions = 0
        self._encoder: Any = None  # truncating + padding tokenizer for model inputs
        self._counter: Any = None  # plain tokenizer for count_tokens (no truncation)
        # concurrent searches' questions share one model run (services/coalescer.py says why)
        self._queries: Coalescer[str, list[float]] = Coalescer(self._embed, batch_size)

    @property
    def spec(self) -> OnnxModelSpec:
        return self._spec

    def warm_up(self) -> None:
        if self._session is not None:
            return
        with self._lock:
            if self._session is not None:
                return
            model = self._model_dir / self._spec.model_file
            vocab = self._model_dir / self._spec.tokenizer_file
            for path in (model, vocab):
                if not path.is_file():
                    raise EmbedderUnavailableError(
                        f"no {path.name} in {self._model_dir} (run scripts/install-models.sh)"
                    )
            with _unavailable("onnxruntime and tokenizers are needed"):
                import onnxruntime as ort
                from tokenizers import Tokenizer
            with _unavailable(f"cannot load {vocab.name}"):
                encoder = Tokenizer.from_file(str(vocab))
                encoder.enable_truncation(max_length=self._spec.max_tokens)
                encoder.enable_padding(pad_id=_pad_id(encoder), pad_token=_PAD)
                counter = Tokenizer.from_file(str(vocab))
                counter.no_truncation()
                counter.no_padding()
            with _unavailable(f"cannot load {model.name}"):
                options = ort.SessionOptions()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.inter_op_num_threads = 1
                if self._threads is not None:
                    options.intra_op_num_threads = self._threads
                options.log_severity_level = 3  # errors only
                # Idle pool threads sleep instead of spinning: a spinning thread held most of a
                # core between queries, CPU the gateway's other work (and Weaviate) needed.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                options.add_session_config_entry("session.inter_op.allow_spinning", "0")
                session = ort.InferenceSession(
                    str(model), sess_options=options, providers=["CPUExecutionProvider"]
                )
                output, dimensions = _pick_output(session, self._spec.output)
            self._encoder, self._counter = encoder, counter
            self._inputs = frozenset(i.name for i in session.get_inputs())
            self._output, self._dimensions = output, dimensions
            self._session = session

    def close(self) -> None:
        with self._lock:
            self._session = self._encoder = self._counter = None

    def _live(self) -> Any:
        if self._session is None:
            self.warm_up()
        return self._session

    @property
    def dimensions(self) -> int:
        self._live()
        return self._dimensions

    @property
    def max_tokens(self) -> int:
        """The model's window in word-pieces, [CLS] and [SEP] included."""
        return self._spec.max_tokens

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embed([self._spec.document_prefix + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        """One question; questions asked at the same time from other threads join its run."""
        return self._queries(self._spec.query_prefix + text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several questions in this call's own runs (no joining)."""
        return self._embed([self._spec.query_prefix + t for t in texts])

    @property
    def query_batches(self) -> tuple[int, int]:
        """Model runs for ``embed_query`` so far, and the questions they embedded."""
        return self._queries.batches, self._queries.items

    def count_tokens(self, text: str) -> int:
        """Word-pieces the model sees for ``text`` (without special tokens or prefix)."""
        self._live()
        with _unavailable("tokenizer failed"):
            return len(self._counter.encode(text, add_special_tokens=False).ids)

    def health(self) -> HealthStatus:
        if self._session is None:
            return HealthStatus("embeddings", False, "model not loaded")
        return HealthStatus("embeddings", True, self._spec.name)

    def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        session = self._live()
        # Longest first, so each batch pads to lengths close to its own (sentence-transformers
        # does the same); results go back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            picked = order[start : start + self._batch_size]
            vectors = self._run(session, [texts[i] for i in picked])
            for i, vector in zip(picked, vectors, strict=True):
                out[i] = vector.tolist()
        return out

    def _run(self, session: Any, texts: list[str]) -> npt.NDArray[np.float32]:
        with _unavailable("embedding failed"):
            encodings = self._encoder.encode_batch(texts)
            ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            (hidden,) = session.run([self._output], feeds)
        return pool(np.asarray(hidden, dtype=np.float32), mask, self._spec.pooling)


_PAD = "[PAD]"


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.token_to_id(_PAD)
    return int(pad) if pad is not None else 0


def _pick_output(session: Any, wanted: str | None) -> tuple[str, int]:
    """The token-vector output to pool and its width (the last axis)."""
    outputs = {o.name: o for o in session.get_outputs()}
    if wanted is None:
        wanted = "last_hidden_state"
        if wanted not in outputs:
            wanted = next((n for n, o in outputs.items() if len(o.shape) == 3), "")
    chosen = outputs.get(wanted)
    if chosen is None or len(chosen.shape) != 3 or not isinstance(chosen.shape[-1], int):
        raise EmbedderUnavailableError(
            f"model has no [batch, seq, dim] output {wanted!r} (outputs: {sorted(outputs)})"
        )
    return wanted, int(chosen.shape[-1])
