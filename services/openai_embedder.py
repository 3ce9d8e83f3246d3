"""Embeddings from any OpenAI-compatible server (``POST {api_base}/embeddings``): vLLM, TEI's
OpenAI route, Ollama's ``/v1``, LocalAI... ``api_base`` includes the version path (``…/v1``)."""

from __future__ import annotations

from typing import Any

from services.remote_embedder import RemoteEmbedder


class OpenAIEmbedder(RemoteEmbedder):
    """Request ``{"model", "input": [...], "encoding_format": "float"}``; response
    ``{"data": [{"index": i, "embedding": [...]}, ...]}`` (put back in input order by index)."""

    provider = "openai-compatible"

    def _embed_batch(self, texts: list[str]) -> Any:
        return self._post(
            "/embeddings", {"model": self._model, "input": texts, "encoding_format": "float"}
        )

    def _vectors(self, raw: Any) -> Any:
        if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
            raise ValueError("no 'data' list in the response")
        items = sorted(raw["data"], key=lambda item: int(item["index"]))
        return [item["embedding"] for item in items]

    def _health_path(self) -> str:
        return "/models"
