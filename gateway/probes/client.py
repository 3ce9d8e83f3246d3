"""HTTP calls of the probes: one httpx client, the caller's key per request, 429 waited out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

MAX_RATE_WAITS = 40


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str
    content_type: str

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class RefusedKeyError(Exception):
    """The gateway refused a key (401): a typo, a revoked key, or the wrong deployment."""


class ProbeClient:
    """Sends probes to one gateway. ``timeout_s`` bounds one call (answers take seconds on CPU)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 300.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport
        )
        self.rate_waits = 0

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProbeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        key: str | None,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> Reply:
        """One request; a 429 is waited out (Retry-After) and sent again, as a client should."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if stream:
            headers["Accept"] = "text/event-stream"
        for _ in range(MAX_RATE_WAITS):
            if stream:
                with self._http.stream(
                    method, path, headers=headers, json=json, params=params
                ) as response:
                    body = "".join(response.iter_text())
            else:
                response = self._http.request(
                    method, path, headers=headers, json=json, params=params
                )
                body = response.text
            if response.status_code != 429:
                return Reply(response.status_code, body, response.headers.get("content-type", ""))
            self.rate_waits += 1
            time.sleep(min(30.0, float(response.headers.get("Retry-After", "1") or 1)))
        return Reply(429, body, response.headers.get("content-type", ""))
