"""Embeddings from Hugging Face text-embeddings-inference through its native ``POST /embed``.

Called with httpx, not LiteLLM's ``huggingface/`` provider (which contacts the public hub)."""

from __future__ import annotations

from typing import Any

from services.remote_embedder import RemoteEmbedder


class TEIEmbedder(RemoteEmbedder):
    """TEI's ``EmbedRequest``: ``{"inputs": [...], "normalize": true, "truncate": true}``;
    its ``EmbedResponse`` is a bare array of vectors. TEI serves one model, so ``model`` is only a
    label (compare it with ``GET /info``'s ``model_id``)."""

    provider = "tei"

    def _embed_batch(self, texts: list[str]) -> Any:
        return self._post("/embed", {"inputs": texts, "normalize": True, "truncate": True})

    def _health_path(self) -> str:
        return "/health"
