"""Embeddings from Ollama's native embed API (``POST /api/embed``)."""

from __future__ import annotations

from typing import Any

from services.remote_embedder import RemoteEmbedder


class OllamaEmbedder(RemoteEmbedder):
    """``/api/embed`` takes ``{"model", "input": [...]}`` and returns ``{"embeddings": [...]}``.
    Ollama L2-normalises these vectors itself."""

    provider = "ollama"

    def _embed_batch(self, texts: list[str]) -> Any:
        return self._post("/api/embed", {"model": self._model, "input": texts, "truncate": True})

    def _vectors(self, raw: Any) -> Any:
        if not isinstance(raw, dict) or "embeddings" not in raw:
            raise ValueError("no 'embeddings' in the response")
        return raw["embeddings"]

    def _health_path(self) -> str:
        return "/api/version"
