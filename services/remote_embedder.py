"""What the HTTP embedders share: batching, lazy client, dimension learnt from the server."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import httpx

from services.errors import EmbedderUnavailableError
from services.http_json import float_vectors, get_ok, post_json, translated
from services.records import HealthStatus

# Remote servers tokenize with their own model; chunk sizing uses this rough, conservative rule
# (about 4 characters a token for English) unless the caller passes a tokenizer function.
CHARS_PER_TOKEN = 4


class RemoteEmbedder(ABC):
    """Base of the HTTP embedders. Subclasses say how one batch is asked for and read back."""

    provider = "remote"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float,
        max_retries: int,
        batch_size: int = 32,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._batch_size = max(1, batch_size)
        self._headers = dict(headers or {})
        self._client: httpx.Client | None = None
        self._dimensions: int | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def what(self) -> str:
        return f"{self.provider} embeddings ({self._model})"

    def warm_up(self) -> None:
        """Open the client and learn the vector size with one tiny request."""
        if self._client is None:
            self._client = httpx.Client(headers=self._headers)
        if self._dimensions is None:
            self._dimensions = len(self.embed_query("dimension probe"))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(headers=self._headers)
        return self._client

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self.warm_up()
        assert self._dimensions is not None
        return self._dimensions

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return post_json(
            self._http,
            f"{self._base_url}{path}",
            body,
            what=self.what,
            unavailable=EmbedderUnavailableError,
            timeout_s=self._timeout_s,
            max_retries=self._max_retries,
        )

    @abstractmethod
    def _embed_batch(self, texts: list[str]) -> Any:
        """The decoded response for one batch (a list of vectors after ``_vectors``)."""

    def _vectors(self, raw: Any) -> Any:
        return raw

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            raw = self._embed_batch(batch)
            with translated(self.what, EmbedderUnavailableError):
                vectors = float_vectors(self._vectors(raw), len(batch), self.what)
            out.extend(vectors)
        if out and self._dimensions is None:
            self._dimensions = len(out[0])
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def count_tokens(self, text: str) -> int:
        return max(1, -(-len(text) // CHARS_PER_TOKEN))

    @abstractmethod
    def _health_path(self) -> str: ...

    def health(self) -> HealthStatus:
        ok, detail = get_ok(
            self._http, f"{self._base_url}{self._health_path()}", timeout_s=self._timeout_s
        )
        return HealthStatus("embeddings", ok, detail or self._model)
