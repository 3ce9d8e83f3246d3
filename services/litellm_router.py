"""Model router: every chat call goes through LiteLLM by alias, with explicit timeouts and retries.

LiteLLM's own defaults (retries 2, timeout 6000 s) would block for 100 minutes on a hung server,
so each alias must carry ``timeout`` and ``max_retries``; the adapter refuses one that does not.

Fallbacks are tried here, in order, when an alias fails (unreachable, error or timeout), so the
returned ``Completion`` can say which alias answered and whether a fallback was used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx

from services.errors import BackendTimeoutError, ConfigError, ModelUnavailableError
from services.records import ChatMessage, Completion, HealthStatus

log = logging.getLogger("holdfast.models")


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
    import openai

    try:
        yield
    except (litellm.exceptions.Timeout, openai.APITimeoutError) as exc:
        raise BackendTimeoutError(f"model alias {alias!r} timed out") from exc
    # LiteLLM's own classes (APIConnectionError, ServiceUnavailableError...) derive from
    # openai.OpenAIError, not from litellm.exceptions.OpenAIError
    except (litellm.exceptions.APIError, litellm.exceptions.OpenAIError, openai.OpenAIError) as exc:
        raise ModelUnavailableError(f"model alias {alias!r} failed: {type(exc).__name__}") from exc


class LiteLLMRouter:
    """A LiteLLM ``Router`` over a ``model_list``; callers only ever name aliases."""

    def __init__(
        self,
        model_list: Sequence[Mapping[str, Any]],
        *,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        probe_timeout_s: float = 1.0,
    ):
        for entry in model_list:
            params = entry.get("litellm_params", {})
            missing = [k for k in ("timeout", "max_retries") if k not in params]
            if missing:
                raise ConfigError(
                    f"model alias {entry.get('model_name')!r} must set {', '.join(missing)}"
                )
        self._model_list = [dict(entry) for entry in model_list]
        known = {str(entry["model_name"]) for entry in self._model_list}
        self._fallbacks = {k: tuple(v) for k, v in (fallbacks or {}).items()}
        for alias, chain in self._fallbacks.items():
            unknown = [a for a in (alias, *chain) if a not in known]
            if unknown:
                raise ConfigError(f"fallbacks of {alias!r} name unknown alias(es): {unknown}")
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
        # cooldowns would keep refusing an alias after its server came back
        self._router = Router(model_list=self._model_list, num_retries=0, disable_cooldowns=True)

    def _params(self, alias: str) -> Mapping[str, Any]:
        for entry in self._model_list:
            if entry["model_name"] == alias:
                return dict(entry["litellm_params"])
        raise ConfigError(f"no model alias {alias!r} in the model list")

    def fallbacks(self, alias: str) -> tuple[str, ...]:
        return self._fallbacks.get(alias, ())

    def complete(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        use_fallbacks: bool = True,
    ) -> Completion:
        """Ask ``alias``; if it fails, each of its fallbacks in turn. Raises the last failure."""
        chain = (alias, *self.fallbacks(alias)) if use_fallbacks else (alias,)
        failure: Exception | None = None
        for candidate in chain:
            try:
                completion = self._complete_one(candidate, messages, max_tokens=max_tokens)
            except (ModelUnavailableError, BackendTimeoutError) as exc:
                failure = self._note_failure(candidate, chain, exc)
                continue
            return replace(completion, fallback_used=candidate != alias)
        assert failure is not None
        raise failure

    @staticmethod
    def _note_failure(candidate: str, chain: Sequence[str], exc: Exception) -> Exception:
        if candidate != chain[-1]:
            log.warning("model alias %r failed (%s); trying its fallback", candidate, exc)
        return exc

    def _call(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None,
        stream: bool,
    ) -> tuple[Any, Mapping[str, Any]]:
        """One LiteLLM call for ``alias`` with its own timeout and retries (the shared setup of
        ``complete`` and ``stream``); the caller translates errors."""
        params = self._params(alias)
        if self._router is None:
            self.warm_up()
        extra: dict[str, Any] = {"stream": True} if stream else {}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        response = self._router.completion(
            model=alias,
            messages=[{"role": m.role, "content": m.content} for m in messages],
            timeout=params["timeout"],
            num_retries=params["max_retries"],
            **extra,
        )
        return response, params

    def _complete_one(
        self, alias: str, messages: Sequence[ChatMessage], *, max_tokens: int | None
    ) -> Completion:
        with _translated(alias):
            response, params = self._call(alias, messages, max_tokens=max_tokens, stream=False)
        usage = getattr(response, "usage", None)
        return Completion(
            text=str(response.choices[0].message.content or ""),
            model=str(params.get("model", alias)),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            alias=alias,
        )

    def stream(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        use_fallbacks: bool = True,
    ) -> ModelStream:
        """The answer's text pieces as the model produces them, falling back like ``complete``
        as long as nothing was yielded yet; the returned stream names who answered."""
        chain = (alias, *self.fallbacks(alias)) if use_fallbacks else (alias,)
        return ModelStream(self, alias, chain, messages, max_tokens)

    def _pieces(
        self, alias: str, messages: Sequence[ChatMessage], max_tokens: int | None
    ) -> Iterator[str]:
        with _translated(alias):
            response, _ = self._call(alias, messages, max_tokens=max_tokens, stream=True)
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


class ModelStream(Iterator[str]):
    """Text pieces of one streamed answer. Before the first piece, a failing alias hands over to
    its next fallback; after it, a failure ends the stream by raising (the caller reports it as
    an error event), since half an answer from one model cannot be continued by another.

    ``alias``, ``model`` and ``fallback_used`` describe the alias that produced the first piece.
    """

    def __init__(
        self,
        router: LiteLLMRouter,
        requested: str,
        chain: Sequence[str],
        messages: Sequence[ChatMessage],
        max_tokens: int | None,
    ) -> None:
        self._router = router
        self._requested = requested
        self._chain = tuple(chain)
        self._messages = messages
        self._max_tokens = max_tokens
        self._pieces: Iterator[str] | None = None
        self.alias: str | None = None
        self.model: str | None = None
        self.fallback_used = False

    def __next__(self) -> str:
        if self._pieces is not None:
            return next(self._pieces)
        failure: Exception | None = None
        for candidate in self._chain:
            pieces = self._router._pieces(candidate, self._messages, self._max_tokens)
            try:
                first = next(pieces)
            except StopIteration:
                first = None  # the model answered with nothing: that is its answer
            except (ModelUnavailableError, BackendTimeoutError) as exc:
                failure = LiteLLMRouter._note_failure(candidate, self._chain, exc)
                continue
            self.alias = candidate
            self.model = str(self._router._params(candidate).get("model", candidate))
            self.fallback_used = candidate != self._requested
            self._pieces = pieces
            if first is None:
                raise StopIteration
            return first
        assert failure is not None
        raise failure
