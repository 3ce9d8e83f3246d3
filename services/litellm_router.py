"""Model router: every chat call goes through LiteLLM by alias, with explicit timeouts and retries.

LiteLLM's own defaults (retries 2, timeout 6000 s) would block for 100 minutes on a hung server,
so each alias must carry ``timeout`` and ``max_retries``; the adapter refuses one that does not.

Fallbacks are tried here, in order, when an alias fails (unreachable, error or timeout), so the
returned ``Completion`` can say which alias answered and whether a fallback was used.

Cancellation: a model server (Ollama, vLLM) generates until the answer ends or the HTTP
connection to it closes, holding one of its few slots all the while. So a call given a
``Cancellation`` runs as a stream on a connection of its own, checks the token between pieces
and, once it is set, closes that connection, which stops the generation and frees the slot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx

from services.cancellation import Cancellation
from services.errors import BackendTimeoutError, ConfigError, ModelUnavailableError
from services.records import ChatMessage, Completion, HealthStatus

log = logging.getLogger("holdfast.models")

# Providers that LiteLLM serves through its own HTTP handler, which takes a ``client``: a call to
# one of them gets a connection pool of its own, closed when the call ends (finished, failed or
# cancelled). LiteLLM's pooled client offers no way to close one abandoned sync stream.
_OWN_CONNECTION_PROVIDERS = frozenset({"ollama", "ollama_chat", "hosted_vllm"})


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


@contextmanager
def _own_connection(params: Mapping[str, Any]) -> Iterator[Any]:
    """LiteLLM's ``HTTPHandler`` for one call (``None`` for providers that bring their own SDK
    client, whose stream object closes its response instead); closed on the way out, so that no
    connection outlives its call. A new TCP connection per model call costs a few milliseconds
    against answers that take seconds."""
    provider = str(params.get("model", "")).split("/", 1)[0]
    if provider not in _OWN_CONNECTION_PROVIDERS:
        yield None
        return
    from litellm.llms.custom_httpx.http_handler import HTTPHandler

    client: Any = HTTPHandler(timeout=params["timeout"], ssl_verify=params.get("ssl_verify"))
    try:
        yield client
    finally:
        client.close()


def _close_stream(response: Any) -> None:
    """Close the HTTP response under a LiteLLM stream where LiteLLM exposes it (the OpenAI SDK's
    ``Stream`` has ``close``); a failure to close must not hide the reason the stream ended."""
    close = getattr(getattr(response, "completion_stream", None), "close", None)
    if callable(close):
        try:
            close()
        except Exception as exc:
            log.debug("closing a model stream failed: %s", type(exc).__name__)


def _delta_text(chunk: Any) -> str:
    choices = getattr(chunk, "choices", None) or []
    delta = getattr(choices[0].delta, "content", None) if choices else None
    return str(delta) if delta else ""


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
        cancel: Cancellation | None = None,
    ) -> Completion:
        """Ask ``alias``; if it fails, each of its fallbacks in turn. Raises the last failure.

        With ``cancel``, the answer is streamed and assembled here, because only a stream gives
        the router a moment between pieces to notice the token and close the connection; the
        alias's ``timeout`` then bounds the whole call, as it bounds an unstreamed one. A
        cancelled call raises ``RequestCancelledError`` and tries no fallback."""
        chain = (alias, *self.fallbacks(alias)) if use_fallbacks else (alias,)
        failure: Exception | None = None
        for candidate in chain:
            try:
                if cancel is None:
                    completion = self._complete_one(candidate, messages, max_tokens=max_tokens)
                else:
                    completion = self._drain(candidate, messages, max_tokens, cancel)
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
        client: Any = None,
        include_usage: bool = False,
    ) -> tuple[Any, Mapping[str, Any]]:
        """One LiteLLM call for ``alias`` with its own timeout and retries (the shared setup of
        ``complete`` and ``stream``); the caller translates errors. ``client``: the call's own
        connection (see ``_own_connection``); ``include_usage``: a stream ends with the token
        counts."""
        params = self._params(alias)
        if self._router is None:
            self.warm_up()
        extra: dict[str, Any] = {"stream": True} if stream else {}
        if max_tokens is not None:
            extra["max_tokens"] = max_tokens
        if client is not None:
            extra["client"] = client
        if include_usage:
            extra["stream_options"] = {"include_usage": True}
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

    def _drain(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        max_tokens: int | None,
        cancel: Cancellation,
    ) -> Completion:
        """One cancellable answer of ``alias``: its stream read to the end, within its timeout."""
        params = self._params(alias)
        deadline = time.monotonic() + float(params["timeout"])
        parts: list[str] = []
        usage: Any = None
        chunks = self._chunks(
            alias, messages, max_tokens=max_tokens, cancel=cancel, deadline=deadline, usage=True
        )
        for chunk in chunks:
            parts.append(_delta_text(chunk))
            usage = getattr(chunk, "usage", None) or usage
        return Completion(
            text="".join(parts),
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
        cancel: Cancellation | None = None,
    ) -> ModelStream:
        """The answer's text pieces as the model produces them, falling back like ``complete``
        as long as nothing was yielded yet; the returned stream names who answered. Once
        ``cancel`` is set, or the stream is closed, the model call's connection is closed."""
        chain = (alias, *self.fallbacks(alias)) if use_fallbacks else (alias,)
        return ModelStream(self, alias, chain, messages, max_tokens, cancel)

    def _chunks(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None,
        cancel: Cancellation | None,
        deadline: float | None = None,
        usage: bool = False,
    ) -> Iterator[Any]:
        """LiteLLM's chunks of one streamed call of ``alias``, on a connection of its own.

        ``usage``: the last chunk carries the token counts. ``cancel`` (and ``deadline``, a
        ``time.monotonic()`` value) are checked before the call and between chunks; the model
        sends a chunk per token, so a cancelled call stops within one token (but not while the
        server still reads a long prompt, during which it sends nothing). Leaving this generator
        in any way (end, error, ``close()``) closes the connection, which is what makes the
        model server stop and free its slot."""
        what = f"model alias {alias!r}"
        params = self._params(alias)
        with _translated(alias), _own_connection(params) as client:
            if cancel is not None:
                cancel.check(what)
            response, _ = self._call(
                alias,
                messages,
                max_tokens=max_tokens,
                stream=True,
                client=client,
                include_usage=usage,
            )
            try:
                for chunk in response:
                    if cancel is not None:
                        cancel.check(what)
                    if deadline is not None and time.monotonic() > deadline:
                        raise BackendTimeoutError(f"{what} timed out")
                    yield chunk
            finally:
                _close_stream(response)

    def _pieces(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        max_tokens: int | None,
        cancel: Cancellation | None = None,
    ) -> Generator[str, None, None]:
        """The text pieces of one streamed call, which ends within the alias's ``timeout`` as
        a whole answer does (each read alone would otherwise bound only the gaps)."""
        deadline = time.monotonic() + float(self._params(alias)["timeout"])
        chunks = self._chunks(
            alias, messages, max_tokens=max_tokens, cancel=cancel, deadline=deadline
        )
        for chunk in chunks:
            text = _delta_text(chunk)
            if text:
                yield text

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
    ``close`` (also when nothing was read yet) ends the model call and releases its connection.
    """

    def __init__(
        self,
        router: LiteLLMRouter,
        requested: str,
        chain: Sequence[str],
        messages: Sequence[ChatMessage],
        max_tokens: int | None,
        cancel: Cancellation | None = None,
    ) -> None:
        self._router = router
        self._requested = requested
        self._chain = tuple(chain)
        self._messages = messages
        self._max_tokens = max_tokens
        self._cancel = cancel
        self._pieces: Generator[str, None, None] | None = None
        self._closed = False
        self.alias: str | None = None
        self.model: str | None = None
        self.fallback_used = False

    def close(self) -> None:
        self._closed = True
        if self._pieces is not None:
            self._pieces.close()

    def __next__(self) -> str:
        if self._closed:
            raise StopIteration
        if self._pieces is not None:
            return next(self._pieces)
        failure: Exception | None = None
        for candidate in self._chain:
            pieces = self._router._pieces(candidate, self._messages, self._max_tokens, self._cancel)
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
