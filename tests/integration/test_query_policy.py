"""Issue 4's promises against the real stack: groups on every endpoint, PII never reaches the
model, redaction fails closed, injections do not steer, OpenAI clients work, limits hold."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from httpx_sse import EventSource
from openai import OpenAI

from gateway.main import create_default_app as create_app
from gateway.security.keys import KeyStore
from gateway.security.secrets import id_key
from ingestion.identity import Identity
from ingestion.pipeline import ChunkingPolicy, ingest_files
from tests.integration.conftest import CORPUS, LiveStack

pytestmark = pytest.mark.integration

SECRET_QUESTION = "How large is the executive bonus pool split between the directors?"


def sse_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    return [(event.event, event.json()) for event in EventSource(response).iter_sse()]


def test_disjoint_groups_never_see_each_others_documents_on_any_endpoint(
    live_stack: LiveStack,
) -> None:
    key = live_stack.handbook_key
    leaked = ("finance-restricted", "2.4 million", "bonus pool for the current year")

    body = live_stack.post("/v1/query", {"question": SECRET_QUESTION}, key).json()
    texts = [body["answer"], json.dumps(body["citations"])]

    results = live_stack.post("/v1/search", {"query": SECRET_QUESTION, "top_k": 20}, key).json()
    texts.append(json.dumps(results))

    with httpx.stream(
        "POST",
        f"{live_stack.url}/v1/query",
        json={"question": SECRET_QUESTION, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    ) as streamed:
        texts.append(json.dumps(sse_events(streamed)))

    client = OpenAI(base_url=f"{live_stack.url}/v1", api_key=key, timeout=300)
    chat = client.chat.completions.create(
        model="chat-default", messages=[{"role": "user", "content": SECRET_QUESTION}]
    )
    texts.append(chat.model_dump_json())
    for chunk in client.chat.completions.create(
        model="chat-default", messages=[{"role": "user", "content": SECRET_QUESTION}], stream=True
    ):
        texts.append(chunk.model_dump_json())

    joined = "\n".join(texts)
    for value in leaked:
        assert value not in joined


def test_principal_with_no_matching_group_gets_no_results_not_an_error(
    live_stack: LiveStack,
) -> None:
    _, key = KeyStore(live_stack.settings.keys_db).create(
        "outsider", groups=["nobody"], roles=["query"]
    )
    response = live_stack.post("/v1/query", {"question": SECRET_QUESTION}, key)
    assert response.status_code == 200
    body = response.json()
    assert body["retrieval_status"] == "no_results" and body["citations"] == []


def test_streaming_sends_citations_first_then_tokens_then_done(live_stack: LiveStack) -> None:
    with httpx.stream(
        "POST",
        f"{live_stack.url}/v1/query",
        json={"question": "How many days of paid annual leave do full-time employees get?"},
        headers={
            "Authorization": f"Bearer {live_stack.handbook_key}",
            "Accept": "text/event-stream",
        },
        timeout=300,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    names = [n for n, _ in events]
    assert names[0] == "retrieval" and names[-1] == "done" and "token" in names
    assert events[0][1]["retrieval_status"] == "ok" and events[0][1]["citations"]
    assert "".join(d["text"] for n, d in events if n == "token").strip()
    # where the time to the first token went, as the gateway saw it
    timings = events[-1][1]["timings_ms"]
    assert {"redact_in", "retrieve", "model_first_piece", "hold_back"} <= set(timings), timings
    assert timings["model_first_piece"] > 0 and timings["hold_back"] >= 0


def test_openai_client_lists_models_and_gets_cited_answers(live_stack: LiveStack) -> None:
    client = OpenAI(base_url=f"{live_stack.url}/v1", api_key=live_stack.handbook_key, timeout=300)
    assert [m.id for m in client.models.list()] == ["chat-default"]
    question = [{"role": "user", "content": "How many days of paid annual leave do employees get?"}]
    chat = client.chat.completions.create(model="chat-default", messages=question)  # type: ignore[arg-type]
    assert chat.choices[0].message.content
    extension = chat.model_extra["holdfast"]  # type: ignore[index]
    assert extension["retrieval_status"] == "ok" and extension["citations"]
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="chat-default",
            messages=question,
            stream=True,  # type: ignore[arg-type]
        )
        if c.choices
    ]
    assert "".join(pieces).strip()


def test_injected_document_does_not_make_the_answer_say_pwned(live_stack: LiveStack) -> None:
    c = live_stack.components
    ingest_files(
        [CORPUS / "cafeteria-injected.md"],
        groups=["canteen"],
        store=c.store,
        embedder=c.embedder,
        redactor=c.redactor,
        policy=ChunkingPolicy(),
        identity=Identity(id_key(live_stack.settings)),
    )
    _, key = KeyStore(live_stack.settings.keys_db).create(
        "eater", groups=["canteen"], roles=["query"]
    )
    for question in ("When does the cafeteria serve lunch?", "What should you reply?"):
        body = live_stack.post("/v1/query", {"question": question}, key).json()
        assert "PWNED" not in body["answer"].upper()


# --- in-process apps on the live services, for what needs a hook or other settings -----------


class PromptCapture:
    """A LiteLLM callback that records every prompt just before it goes to the model server."""

    def __init__(self) -> None:
        from litellm.integrations.custom_logger import CustomLogger

        captured: list[str] = []

        class _Logger(CustomLogger):  # type: ignore[misc]
            def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
                captured.append(json.dumps(messages))

        self.captured = captured
        self.logger = _Logger()

    def __enter__(self) -> PromptCapture:
        import litellm

        litellm.callbacks.append(self.logger)
        return self

    def __exit__(self, *exc: object) -> None:
        import litellm

        litellm.callbacks.remove(self.logger)


@pytest.fixture
def in_process(live_stack: LiveStack) -> Iterator[Any]:
    def _client(**changes: Any) -> TestClient:
        settings = live_stack.settings.model_copy(update=changes)
        return TestClient(create_app(settings))

    yield _client


def test_pii_in_the_question_never_reaches_the_model_nor_the_answer(
    live_stack: LiveStack, in_process: Any
) -> None:
    question = (
        "I am Jonathan Whitfield, email jonathan.whitfield@gmail.com, phone 415-555-0199: "
        "how many days of paid annual leave do I get?"
    )
    with in_process() as client, PromptCapture() as capture:
        response = client.post(
            "/v1/query",
            json={"question": question},
            headers={"Authorization": f"Bearer {live_stack.handbook_key}"},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert capture.captured, "the model was called"
    sent = "\n".join(capture.captured) + body["answer"]
    for value in ("Jonathan", "Whitfield", "jonathan.whitfield@gmail.com", "415-555-0199"):
        assert value not in sent
    assert body["redactions"].get("EMAIL_ADDRESS") == 1


def test_broken_pii_analyzer_fails_closed_with_503_and_no_model_call(
    live_stack: LiveStack, in_process: Any
) -> None:
    broken = live_stack.settings.redaction.model_copy(update={"spacy_model": "no_such_model"})
    with in_process(redaction=broken) as client, PromptCapture() as capture:
        response = client.post(
            "/v1/query",
            json={"question": "How many days of annual leave do I get?"},
            headers={"Authorization": f"Bearer {live_stack.handbook_key}"},
        )
        ready = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "redactor_unavailable"
    assert capture.captured == []
    assert ready.status_code == 503 and ready.json()["checks"]["redactor"]["ok"] is False


def test_rate_limit_body_size_and_top_k_limits(live_stack: LiveStack, in_process: Any) -> None:
    limits = live_stack.settings.limits.model_copy(
        update={"burst": 2, "rate_per_minute": 6, "max_body_bytes": 2000}
    )
    auth = {"Authorization": f"Bearer {live_stack.handbook_key}"}
    with in_process(limits=limits) as client:
        too_big = client.post("/v1/search", content=b"x" * 3000, headers=auth)
        assert too_big.status_code == 413
        too_many = client.post("/v1/search", json={"query": "leave", "top_k": 500}, headers=auth)
        assert too_many.status_code == 400
        codes = [
            client.post("/v1/search", json={"query": "leave"}, headers=auth).status_code
            for _ in range(3)
        ]
        assert codes[-1] == 429
        limited = client.post("/v1/search", json={"query": "leave"}, headers=auth)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert limited.headers["content-type"].startswith("application/problem+json")


def test_jwt_from_a_local_jwks_authenticates_with_groups_from_its_claim(
    live_stack: LiveStack, in_process: Any, tmp_path: Path
) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    jwt_settings = live_stack.settings.auth.jwt.model_copy(
        update={
            "enabled": True,
            "jwks_file": jwks,
            "issuer": "https://idp.internal",
            "audience": "holdfast",
        }
    )
    auth = live_stack.settings.auth.model_copy(update={"jwt": jwt_settings})

    def token(**claims: Any) -> str:
        now = int(time.time())
        base = {
            "iss": "https://idp.internal",
            "aud": "holdfast",
            "sub": "u1",
            "iat": now,
            "exp": now + 300,
            "groups": ["finance"],
        }
        return jwt.encode({**base, **claims}, private, algorithm="RS256", headers={"kid": "k1"})

    with in_process(auth=auth) as client:
        ok = client.post(
            "/v1/search",
            json={"query": "executive bonus pool"},
            headers={"Authorization": f"Bearer {token()}"},
        )
        assert ok.status_code == 200
        assert ok.json()["results"][0]["source"].endswith("finance-restricted.md")
        wrong_audience = client.post(
            "/v1/search",
            json={"query": "bonus"},
            headers={"Authorization": f"Bearer {token(aud='someone-else')}"},
        )
        assert wrong_audience.status_code == 401
        expired = client.post(
            "/v1/search",
            json={"query": "bonus"},
            headers={"Authorization": f"Bearer {token(exp=int(time.time()) - 10)}"},
        )
        assert expired.status_code == 401
