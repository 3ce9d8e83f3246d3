"""post_json: busy statuses and transport errors are tried again with backoff, each try within
its timeout; other errors at once; every failure leaves as a Holdfast error."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from services.errors import BackendTimeoutError, EmbedderUnavailableError
from services.http_json import post_json

pytestmark = pytest.mark.unit


Answer = Callable[[httpx.Request], httpx.Response]


def _client(answers: list[Answer]) -> tuple[httpx.Client, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[min(len(seen), len(answers)) - 1](request)

    return httpx.Client(transport=httpx.MockTransport(handle)), seen


def _status(code: int, body: object = None) -> Answer:
    return lambda _: httpx.Response(code, json=body)


def _refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused", request=request)


def _post(client: httpx.Client, max_retries: int) -> object:
    return post_json(
        client,
        "http://embedder/embed",
        {"inputs": ["x"]},
        what="tei embeddings (m)",
        unavailable=EmbedderUnavailableError,
        timeout_s=7.5,
        max_retries=max_retries,
    )


def test_busy_answers_are_tried_again_until_one_succeeds() -> None:
    client, seen = _client([_status(503), _status(429), _status(200, [[0.1, 0.2]])])
    assert _post(client, max_retries=2) == [[0.1, 0.2]]
    assert len(seen) == 3
    assert all(r.extensions["timeout"]["read"] == 7.5 for r in seen)  # every try has its timeout


def test_when_tries_run_out_the_last_status_is_named() -> None:
    client, seen = _client([_status(503)])
    with pytest.raises(EmbedderUnavailableError, match=r"answered HTTP 503"):
        _post(client, max_retries=1)
    assert len(seen) == 2


def test_a_refusal_of_the_request_itself_is_not_tried_again() -> None:
    client, seen = _client([_status(400), _status(200, [])])
    with pytest.raises(EmbedderUnavailableError, match=r"answered HTTP 400"):
        _post(client, max_retries=3)
    assert len(seen) == 1


def test_an_unreachable_server_is_tried_again_then_reported() -> None:
    client, seen = _client([_refused])
    with pytest.raises(EmbedderUnavailableError, match=r"unreachable: ConnectError"):
        _post(client, max_retries=2)
    assert len(seen) == 3


def test_a_timeout_is_reported_as_a_timeout() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client, seen = _client([slow])
    with pytest.raises(BackendTimeoutError, match="timed out"):
        _post(client, max_retries=1)
    assert len(seen) == 2
