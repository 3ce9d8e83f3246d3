"""The walking skeleton end to end against the real services."""

from __future__ import annotations

import pytest
from weaviate.classes.query import Filter

from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


def test_sample_corpus_is_indexed_with_no_rejections(live_stack: LiveStack) -> None:
    report = live_stack.report
    assert report.indexed == 3 and report.rejected == 0
    assert live_stack.components.store.count() >= report.chunks > 3


def test_answer_comes_from_ollama_and_cites_chunks_from_weaviate(live_stack: LiveStack) -> None:
    response = live_stack.post(
        "/v1/query",
        {"question": "How many days of paid annual leave do full-time employees receive?"},
        live_stack.handbook_key,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["refused"] is False
    assert body["model"] == f"ollama_chat/{live_stack.settings.ollama.chat_model}"
    assert body["answer"].strip()
    citations = body["citations"]
    assert citations, "a grounded answer carries its citations"
    assert any(c["section"].startswith("Annual leave") for c in citations)
    assert any(c["source"].endswith("leave-policy.md") for c in citations)
    # every cited chunk is a real object in Weaviate, readable by the caller's group
    collection = live_stack.components.store._live.collections.use(
        live_stack.settings.weaviate.collection
    )
    for citation in citations:
        found = collection.query.fetch_objects(
            filters=Filter.by_property("chunk_id").equal(citation["chunk_id"]), limit=1
        ).objects
        assert found and "handbook" in found[0].properties["access_groups"]


def test_search_never_returns_chunks_outside_callers_groups(live_stack: LiveStack) -> None:
    question = {"query": "executive bonus pool remuneration committee", "top_k": 10}
    handbook = live_stack.post("/v1/search", question, live_stack.handbook_key).json()["results"]
    finance = live_stack.post("/v1/search", question, live_stack.finance_key).json()["results"]
    assert finance and all(h["source"].endswith("finance-restricted.md") for h in finance)
    assert handbook and not any(h["source"].endswith("finance-restricted.md") for h in handbook)


def test_question_about_documents_the_caller_cannot_read_is_refused(live_stack: LiveStack) -> None:
    response = live_stack.post(
        "/v1/query",
        {"question": "How large is the executive bonus pool this year?"},
        live_stack.handbook_key,
    )
    body = response.json()
    assert response.status_code == 200
    assert body["refused"] is True, body
    assert not any("finance-restricted" in c["source"] for c in body["citations"])
    assert "2.4 million" not in body["answer"]


def test_unrelated_question_is_refused_without_calling_the_model(live_stack: LiveStack) -> None:
    body = live_stack.post(
        "/v1/query", {"question": "What is the boiling point of tungsten?"}, live_stack.handbook_key
    ).json()
    assert body["refused"] is True
    assert body["retrieval_status"] == "low_confidence"
    assert body["model"] is None and body["citations"] == []


def test_a_question_naming_an_api_no_passage_names_is_refused_before_the_model(
    live_stack: LiveStack,
) -> None:
    """The leave policy is retrieved (the question is about annual leave), but it documents no
    ``HRPortal.leave_balance()``: the gateway refuses instead of letting the model invent it."""
    question = "How many days of paid annual leave do I have left per HRPortal.leave_balance()?"
    body = live_stack.post("/v1/query", {"question": question}, live_stack.handbook_key).json()
    assert body["refused"] is True
    assert (body["retrieval_status"], body["refusal_reason"]) == ("unknown_name", "unknown_name")
    assert body["confidence"] >= live_stack.settings.retrieval.min_score  # retrieval was strong
    assert body["model"] is None and body["citations"] == []


def test_missing_or_unknown_key_gets_problem_json_401(live_stack: LiveStack) -> None:
    for key in (None, "hf_not-a-real-key"):
        response = live_stack.post("/v1/query", {"question": "annual leave"}, key)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unauthenticated"


def test_pii_in_documents_never_reaches_weaviate(live_stack: LiveStack) -> None:
    collection = live_stack.components.store._live.collections.use(  # read the raw store
        live_stack.settings.weaviate.collection
    )
    expenses = collection.query.fetch_objects(
        filters=Filter.by_property("source").like("*expenses.md"), limit=50
    ).objects
    texts = " ".join(str(o.properties["text"]) for o in expenses)
    assert "finance helpdesk" in texts
    assert "maria.keller@holdfast-industries.com" not in texts
    assert "212-555-0143" not in texts
    assert "<EMAIL_ADDRESS_1>" in texts  # numbered per document
    assert live_stack.report.redactions["EMAIL_ADDRESS"] >= 1


def test_pii_in_the_question_is_redacted_before_search(live_stack: LiveStack) -> None:
    body = live_stack.post(
        "/v1/query",
        {"question": "I am john.doe@holdfast.io, how many days of annual leave do I get?"},
        live_stack.handbook_key,
    ).json()
    assert body["redactions"].get("EMAIL_ADDRESS") == 1
    assert "john.doe@holdfast.io" not in body["answer"]


def test_pii_written_with_look_alike_characters_in_the_question_is_redacted(
    live_stack: LiveStack,
) -> None:
    ssn = "287\u201141\u20119063"  # non-breaking hyphens
    mail = "john.doe\u200b@holdfast.io"  # a zero-width space before the @
    body = live_stack.post(
        "/v1/query",
        {"question": f"My SSN is {ssn} and I am {mail}: how many days of annual leave do I get?"},
        live_stack.handbook_key,
    ).json()
    assert body["redactions"].get("US_SSN") == 1, body
    assert body["redactions"].get("EMAIL_ADDRESS") == 1, body
    assert "9063" not in body["answer"] and "john.doe" not in body["answer"]


def test_search_asked_to_rerank_without_a_reranker_says_how_to_add_one(
    live_stack: LiveStack,
) -> None:
    response = live_stack.post(
        "/v1/search", {"query": "annual leave", "rerank": True}, live_stack.handbook_key
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "reranker_not_configured"
    assert "rerank-default" in problem["detail"]
