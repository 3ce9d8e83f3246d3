"""In-process embeddings with sentence-transformers, loaded from a folder (never a hub id).

Only a ``local/`` entry with ``model_path`` (a custom sentence-transformers folder) uses this.
The packaged ``local/all-MiniLM-L6-v2`` is served by the ONNX export of the same model
(``services/onnx_embedder.py``, same vectors), so torch is not a run-time dependency:
sentence-transformers comes only with the optional extra ``holdfast[sentence-transformers]``,
and ``warm_up`` says so in one line when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.errors import EmbedderUnavailableError
from services.records import HealthStatus

EXTRA = "holdfast[sentence-transformers]"


class LocalEmbedder:
    """Embeds on this machine's CPU (or GPU when torch sees one). Thread-safe for inference."""

    def __init__(self, model_path: Path, *, batch_size: int = 32, device: str | None = "cpu"):
        self._model_path = model_path
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        if not (self._model_path / "config.json").is_file():
            raise EmbedderUnavailableError(f"no embedding model at {self._model_path}")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailableError(
                f"the local/ model at {self._model_path} needs sentence-transformers, which is "
                f"not installed: install the optional extra {EXTRA}, or use an onnx/ model"
            ) from exc
        try:
            self._model = SentenceTransformer(
                str(self._model_path), device=self._device, local_files_only=True
            )
        except Exception as exc:  # any load failure means the port is unusable
            raise EmbedderUnavailableError(f"cannot load {self._model_path}: {exc}") from exc

    @property
    def _live(self) -> Any:
        if self._model is None:
            self.warm_up()
        return self._model

    @property
    def dimensions(self) -> int:
        return int(self._live.get_sentence_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        return int(self._live.max_seq_length)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._live.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        """Word-pieces the model sees for ``text`` (without special tokens)."""
        return len(self._live.tokenizer.encode(text, add_special_tokens=False))

    def health(self) -> HealthStatus:
        if self._model is None:
            return HealthStatus("embeddings", False, "model not loaded")
        return HealthStatus("embeddings", True, self._model_path.name)
