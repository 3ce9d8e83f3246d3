"""Reranking with a cross-encoder served by text-embeddings-inference (``POST /rerank``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from services.errors import RerankerUnavailableError
from services.http_json import get_ok, post_json, translated
from services.records import HealthStatus, RerankScore


class TEIReranker:
    """TEI's ``RerankRequest`` ``{"query", "texts", "truncate", "raw_scores", "return_text"}``;
    its ``RerankResponse`` is an array of ``Rank`` ``{"index", "score"}``."""

    def __init__(self, base_url: str, model: str, *, timeout_s: float, max_retries: int) -> None:
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._client: httpx.Client | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client()
        return self._client

    def warm_up(self) -> None:
        self._http  # noqa: B018 - open the client outside the request path

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def rerank(self, query: str, texts: Sequence[str]) -> list[RerankScore]:
        if not texts:
            return []
        what = f"tei rerank ({self._model})"
        raw: Any = post_json(
            self._http,
            f"{self._base_url}/rerank",
            {
                "query": query,
                "texts": list(texts),
                "truncate": True,
                "raw_scores": False,
                "return_text": False,
            },
            what=what,
            unavailable=RerankerUnavailableError,
            timeout_s=self._timeout_s,
            max_retries=self._max_retries,
        )
        with translated(what, RerankerUnavailableError):
            if not isinstance(raw, list):
                raise ValueError("expected an array of ranks")
            scores = [RerankScore(int(r["index"]), float(r["score"])) for r in raw]
            if any(not 0 <= s.index < len(texts) for s in scores):
                raise ValueError("a rank names an index outside the texts sent")
        return sorted(scores, key=lambda s: s.score, reverse=True)

    def health(self) -> HealthStatus:
        ok, detail = get_ok(self._http, f"{self._base_url}/health", timeout_s=self._timeout_s)
        return HealthStatus("reranker", ok, detail or self._model)
