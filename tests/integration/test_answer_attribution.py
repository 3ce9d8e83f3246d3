"""Answers that stay inside their passages, on the real stack: every sentence of a real answer
from the real chat model is attributed to passages, ``cited`` follows that attribution, and a
sentence stating a number or name that is in no passage is flagged (or, under
``generation.unsupported_policy: refuse``, the answer is refused).

The sampled CPU model does not hallucinate on cue, so the planted unsupported sentences are
checked the way the gateway checks an answer: against the very passages the gateway gave the
model (rebuilt by the same retrieval on the same index) with the real embedding model."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from gateway.api.routes.query import RetrievalParams, options_for
from gateway.main import create_default_app as create_app
from gateway.query.answering import retrieve_step
from gateway.query.attribution import PassageIndex, attribute, attribution_dicts
from gateway.query.clock import StageClock
from gateway.query.prompt import REFUSAL_TEXT
from gateway.query.records import Ports, Retrieval
from gateway.security.keys import KeyStore, Principal
from tests.integration.conftest import PORT_BASE, LiveStack
from tests.integration.obs_gateway import gateway_settings

pytestmark = pytest.mark.integration

QUESTIONS = (
    "How many days of paid annual leave do full-time employees receive?",
    "For how many working days is sick leave paid at full salary?",
)
NAV_OR_MARKUP = re.compile(r"(?i)\|\s*prev\s*\||\|\s*next\s*\||</?(div|span|p|a|br|td|tr)\b|¶")


def ask(live_stack: LiveStack, question: str) -> dict[str, Any]:
    response = live_stack.post("/v1/query", {"question": question}, live_stack.handbook_key)
    assert response.status_code == 200, response.text
    return dict(response.json())


def answered(live_stack: LiveStack) -> tuple[str, dict[str, Any]]:
    """A real answer (the small model sometimes declines; another question then)."""
    body: dict[str, Any] = {}
    for question in QUESTIONS * 2:
        body = ask(live_stack, question)
        assert isinstance(body["unsupported_sentences"], list)
        assert isinstance(body["attribution"], list)
        if not body["refused"]:
            return question, body
        assert body["refusal_reason"] == "model_declined", body
        assert body["unsupported_sentences"] == [] and body["attribution"] == []
    pytest.fail(f"the model declined every question: {body['answer']!r}")


def context_of(live_stack: LiveStack, question: str) -> tuple[Retrieval, Ports]:
    """The passages the gateway gave the model, by the gateway's own retrieval step."""
    components = live_stack.components
    current = components.registry.current()
    ports = Ports(
        components.store, current.embedder, current.router, components.redactor, current.reranker
    )
    options = options_for(components, RetrievalParams(), question)
    reader = Principal(name="tester", groups=("handbook",), roles=frozenset({"query"}))
    _, retrieval = retrieve_step(question, reader, ports, options, Counter(), StageClock())
    assert retrieval.status == "ok" and retrieval.context
    return retrieval, ports


def assert_consistent(body: dict[str, Any]) -> None:
    sentences = body["attribution"]
    assert sentences, "an answer has at least one sentence"
    indexes = {c["index"] for c in body["citations"]}
    for s in sentences:
        assert set(s["passages"]) <= indexes, s
        assert s["passages"] or not s["supported"], s
    assert body["unsupported_sentences"] == [s["sentence"] for s in sentences if not s["supported"]]
    attributed = {n for s in sentences for n in s["passages"]}
    assert {c["index"] for c in body["citations"] if c["cited"]} == attributed
    assert attributed, "at least one passage is cited"
    assert not NAV_OR_MARKUP.search(body["answer"]), body["answer"]


def test_every_sentence_of_a_real_answer_is_attributed_and_cited_follows(
    live_stack: LiveStack,
) -> None:
    question, body = answered(live_stack)
    assert_consistent(body)
    # the same check on the same passages with the same embedding model gives the same result
    retrieval, ports = context_of(live_stack, question)
    assert [c["chunk_id"] for c in body["citations"]] == [
        h.chunk.chunk_id for h in retrieval.context
    ]
    again = attribute(body["answer"], retrieval.context, ports.embedder)
    assert attribution_dicts(again) == body["attribution"]


def test_a_planted_number_or_name_in_no_passage_is_unsupported_on_the_real_passages(
    live_stack: LiveStack,
) -> None:
    question = QUESTIONS[0]
    retrieval, ports = context_of(live_stack, question)
    index = PassageIndex(retrieval.context)
    assert index.holds("28"), "the leave passage states 28 days"
    wrong = next(str(n) for n in range(29, 99) if not index.holds(str(n)))
    faithful = "Full-time employees receive 28 days of paid annual leave per year [1]."
    planted = (
        f"{faithful} Full-time employees receive {wrong} days of paid annual leave [1]. "
        "Leave is requested in Workday. Part-time staff get the same entitlement pro rata."
    )
    result = attribute(planted, retrieval.context, ports.embedder)
    verdicts = [(s.supported, s.missing) for s in result.sentences]
    assert verdicts == [(True, ()), (False, (wrong,)), (False, ("Workday",)), (True, ())]
    assert result.unsupported == [
        f"Full-time employees receive {wrong} days of paid annual leave [1].",
        "Leave is requested in Workday.",
    ]
    assert result.sentences[3].by in {"overlap", "similarity"}  # no marker, still attributed
    # the answer's passages: the leave passage is among the cited ones
    cited = [retrieval.context[n - 1].chunk.section for n in sorted(result.cited)]
    assert any("leave" in s.lower() for s in cited), cited


def streamed(live_stack: LiveStack, question: str) -> tuple[str, dict[str, Any]]:
    """A streamed answer: the text of its tokens and its ``done`` event."""
    headers = {"Authorization": f"Bearer {live_stack.handbook_key}"}
    with (
        httpx.Client(timeout=300.0) as client,
        connect_sse(
            client,
            "POST",
            f"{live_stack.url}/v1/query",
            json={"question": question, "stream": True},
            headers=headers,
        ) as source,
    ):
        events = [(e.event, e.json()) for e in source.iter_sse()]
    assert events[0][0] == "retrieval" and events[-1][0] == "done"
    text = "".join(d["text"] for name, d in events if name == "token")
    assert not NAV_OR_MARKUP.search(text)
    return text, events[-1][1]


def test_the_streamed_answer_ends_with_the_same_attribution(live_stack: LiveStack) -> None:
    """The ``done`` event attributes the streamed text as the check on the real passages does
    (the small model sometimes declines; another question then)."""
    done: dict[str, Any] = {}
    for question in QUESTIONS * 2:
        text, done = streamed(live_stack, question)
        if not done["refused"]:
            break
        assert done["refusal_reason"] == "model_declined" and done["attribution"] == []
    else:
        pytest.fail(f"the model declined every streamed question: {done!r}")
    assert [s["sentence"] for s in done["attribution"]]
    retrieval, ports = context_of(live_stack, question)
    again = attribute(text, retrieval.context, ports.embedder)
    assert attribution_dicts(again) == done["attribution"]
    assert done["cited"] == sorted({n for s in done["attribution"] for n in s["passages"]})
    assert done["unsupported_sentences"] == [
        s["sentence"] for s in done["attribution"] if not s["supported"]
    ]


@pytest.fixture(scope="module")
def refusing(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The gateway in this process on the live services, with unsupported_policy: refuse."""
    home = tmp_path_factory.mktemp("refuse-home")
    settings = gateway_settings(
        live_stack.settings,
        home,
        PORT_BASE + 23,
        generation={"unsupported_policy": "refuse"},
    )
    _, reader = KeyStore(settings.keys_db).create("r", groups=["handbook"], roles=["query"])
    with TestClient(create_app(settings)) as client:
        yield client, reader


def test_under_refuse_no_unsupported_sentence_is_ever_returned(
    live_stack: LiveStack, refusing: Any
) -> None:
    client, reader = refusing
    # the app under test runs the policy (the model rarely writes an unsupported sentence, so
    # the refusal itself is shown on planted answers in tests/unit/gateway/test_attribution.py)
    options = options_for(client.app.state.components, RetrievalParams(), QUESTIONS[0])
    assert options.unsupported_policy == "refuse"
    for question in QUESTIONS:
        response = client.post(
            "/v1/query", json={"question": question}, headers={"Authorization": f"Bearer {reader}"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["unsupported_sentences"] == []
        if body["refusal_reason"] == "unsupported":
            assert body["answer"] == REFUSAL_TEXT and body["citations"] == []
            assert body["attribution"] == []
        elif not body["refused"]:
            assert_consistent(body)
            assert all(s["supported"] for s in body["attribution"])
            # and the check on the real passages agrees: nothing in it is unsupported
            retrieval, ports = context_of(live_stack, question)
            assert attribute(body["answer"], retrieval.context, ports.embedder).unsupported == []
