"""Model router: every chat call goes through LiteLLM by alias, with explicit timeouts and retries.

LiteLLM's own defaults (retries 2, timeout 6000 s) would block for 100 minutes on a hung server,
so each alias must carry ``timeout`` and ``max_retries``; the adapter refuses one that does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from services.errors import BackendTimeoutError, ConfigError, ModelUnavailableError
from services.records import ChatMessage, Completion, HealthStatus


def _probe_url(params: Mapping[str, Any]) -> str | None:
    """The cheapest endpoint that tells whether the server behind an alias answers."""
    api_base = str(params.get("api_base") or "").rstrip("/")
    if not api_base:
        return None
    provider = str(params.get("model", "")).split("/", 1)[0]
    if provider in {"ollama", "ollama_chat"}:
        return f"{api_base}/api/version"
    return f"{api_base}/models"


@contextmanager
def _translated(alias: str) -> Iterator[None]:
    import litellm

    try:
        yield
    except litellm.exceptions.Timeout as exc:
        raise BackendTimeoutError(f"model alias {alias!r} timed out") from exc
    except (litellm.exceptions.APIError, litellm.exceptions.OpenAIError) as exc:
        raise ModelUnavailableError(f"model alias {alias!r} failed: {type(exc).__name__}") from exc


class LiteLLMRouter:
    """A LiteLLM ``Router`` over a ``model_list``; callers only ever name aliases."""

    def __init__(self, model_list: Sequence[Mapping[str, Any]], *, probe_timeout_s: float = 1.0):
        for entry in model_list:
            params = entry.get("litellm_params", {})
            missing = [k for k in ("timeout", "max_retries") if k not in params]
            if missing:
                raise ConfigError(
                    f"model alias {entry.get('model_name')!r} must set {', '.join(missing)}"
                )
        self._model_list = [dict(entry) for entry in model_list]
        self._probe_timeout_s = probe_timeout_s
        self._router: Any = None

    @property
    def aliases(self) -> list[str]:
        return [str(entry["model_name"]) for entry in self._model_list]

    def warm_up(self) -> None:
        if self._router is not None:
            return
        import litellm
        from litellm.router import Router

        litellm.telemetry = False
        self._router = Router(model_list=self._model_list, num_retries=0)

    def _params(self, alias: str) -> Mapping[str, Any]:
        for entry in self._model_list:
            if entry["model_name"] == alias:
                return dict(entry["litellm_params"])
        raise ConfigError(f"no model alias {alias!r} in the model list")

    def complete(
        self, alias: str, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion:
        params = self._params(alias)
        if self._router is None:
            self.warm_up()
        extra: dict[str, Any] = {}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        with _translated(alias):
            response = self._router.completion(
                model=alias,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                timeout=params["timeout"],
                num_retries=params["max_retries"],
                **extra,
            )
        usage = getattr(response, "usage", None)
        return Completion(
            text=str(response.choices[0].message.content or ""),
            model=str(params.get("model", alias)),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
        )

    def stream(
        self, alias: str, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]:
        """Yield the answer's text pieces as the model produces them."""
        params = self._params(alias)
        if self._router is None:
            self.warm_up()
        extra: dict[str, Any] = {}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        with _translated(alias):
            response = self._router.completion(
                model=alias,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                timeout=params["timeout"],
                num_retries=params["max_retries"],
                stream=True,
                **extra,
            )
            for chunk in response:
                choices = getattr(chunk, "choices", None) or []
                delta = getattr(choices[0].delta, "content", None) if choices else None
                if delta:
                    yield str(delta)

    def health(self, alias: str) -> HealthStatus:
        try:
            url = _probe_url(self._params(alias))
        except ConfigError as exc:
            return HealthStatus("llm", False, str(exc))
        if url is None:
            return HealthStatus("llm", True, "no api_base to probe")
        try:
            response = httpx.get(url, timeout=self._probe_timeout_s)
        except httpx.HTTPError as exc:
            return HealthStatus("llm", False, f"unreachable: {type(exc).__name__}")
        ok = response.status_code < 500
        return HealthStatus("llm", ok, "" if ok else f"HTTP {response.status_code}")
