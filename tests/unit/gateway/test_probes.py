"""The access probes' pure logic, and the engine against a fake gateway (httpx MockTransport)
that either keeps groups apart or leaks one document across them."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from gateway.probes import plan
from gateway.probes.client import ProbeClient, RefusedKeyError
from gateway.probes.detect import (
    excerpt,
    find_markers,
    foreign_ids,
    foreign_markers,
    readable,
    returned_doc_ids,
    snippets,
)
from gateway.probes.engine import run_probes
from gateway.probes.records import Caller, Canary, Document, Marker, Surface

pytestmark = pytest.mark.unit

HR = Document("a" * 32, "hr/salary-bands.md", "Salary bands 2026", ("hr",))
ENG = Document("b" * 32, "eng/oncall.md", "On-call rota", ("eng",))
HR_TEXT = "The L5 salary band runs from 91,000 to 118,000 per year for every engineering role."
ENG_TEXT = "The on-call rota changes every Monday at nine; swaps go through the team lead."


def test_markers_are_the_foreign_documents_ids_titles_sources_text_and_canaries() -> None:
    markers = foreign_markers(
        {ENG.doc_id: ENG},
        {ENG.doc_id: ENG, HR.doc_id: HR},
        chunks={HR.doc_id: [("c" * 32, HR_TEXT)], ENG.doc_id: [("d" * 32, ENG_TEXT)]},
        canaries=[Canary("velmorakit", "salary bands", HR.doc_id, ("hr",))],
        own_groups={"eng"},
    )
    kinds = {(m.kind, m.value) for m in markers}
    assert {("doc_id", HR.doc_id), ("title", HR.title), ("source", HR.source)} <= kinds
    assert ("chunk_id", "c" * 32) in kinds and ("canary", "velmorakit") in kinds
    assert ("group", "hr") in kinds
    assert any(k == "text" and v in HR_TEXT for k, v in kinds)
    assert not any(m.doc_id == ENG.doc_id for m in markers)


def test_a_title_the_caller_also_holds_is_no_marker() -> None:
    twin = Document("e" * 32, "eng/README.md", "Salary bands 2026", ("eng",))
    markers = foreign_markers({twin.doc_id: twin}, {twin.doc_id: twin, HR.doc_id: HR})
    assert ("title", HR.title) not in {(m.kind, m.value) for m in markers}


def test_find_markers_skips_what_the_caller_sent_and_its_own_text() -> None:
    markers = [
        Marker("title", "Salary bands 2026", HR.doc_id),
        Marker("text", "salary band runs from 91,000", HR.doc_id),
    ]
    body = json.dumps({"answer": "Salary bands 2026 say the salary band runs from 91,000"})
    assert len(find_markers(body, markers)) == 2
    assert [m.kind for m in find_markers(body, markers, asked="salary bands 2026?")] == ["text"]
    own = ["it says the salary band runs from 91,000 here"]
    assert find_markers(body, markers, asked="Salary bands 2026", own_texts=own) == []


def test_group_names_count_only_as_values_not_as_keys_or_prose() -> None:
    group = [Marker("group", "delta", "")]
    assert find_markers('data: {"choices": [{"delta": {"content": "hi"}}]}\n', group) == []
    assert find_markers('{"answer": "the delta team"}', group) == []
    assert find_markers('{"access_groups": ["delta"]}', group) == group
    assert find_markers('holdfast_docs{group="delta"} 3\n', group) == group


def test_sse_frames_are_unescaped_and_their_doc_ids_found() -> None:
    body = 'event: retrieval\ndata: {"citations": [{"doc_id": "x1", "title": "\\u00c9t\\u00e9"}]}\n'
    assert "Été" in readable(body)
    assert returned_doc_ids(body) == {"x1"}
    assert foreign_ids(body, {"x2"}) == {"x1"}


def test_snippets_avoid_redaction_placeholders() -> None:
    text = "Call <PHONE_NUMBER> now. " + HR_TEXT
    found = snippets(text)
    assert found, "the HR text yields no snippets"
    assert all("<" not in s and len(s) >= 30 for s in found)


def test_the_plan_is_seeded_and_covers_every_weighted_surface() -> None:
    first = plan.surfaces(random.Random(3), 200, plan.DEFAULT_WEIGHTS)
    assert first == plan.surfaces(random.Random(3), 200, plan.DEFAULT_WEIGHTS)
    assert set(first) == set(Surface) and len(first) == 200
    assert plan.surfaces(random.Random(3), 200, {Surface.SEARCH: 1}) == [Surface.SEARCH] * 200


def test_attack_text_aims_at_the_target() -> None:
    canary = Canary("velmorakit", "quendry turbine", HR.doc_id)
    texts = {plan.attack_text(random.Random(i), HR, canaries=[canary]) for i in range(40)}
    assert any("quendry turbine" in t for t in texts) and any(HR.title in t for t in texts)
    assert len(plan.fake_id(random.Random(1), HR.doc_id)) == len(HR.doc_id)


# --- the engine against a fake gateway ----------------------------------------------------


def fake_gateway(*, leak: bool) -> httpx.MockTransport:
    """Keys "hr" and "eng" each read their group's document; with ``leak``, search ignores it."""
    docs = {"hr": HR, "eng": ENG}
    text = {HR.doc_id: HR_TEXT, ENG.doc_id: ENG_TEXT}

    def doc_out(d: Document) -> dict[str, object]:
        return {
            "doc_id": d.doc_id,
            "source": d.source,
            "title": d.title,
            "access_groups": list(d.access_groups),
            "doc_type": "md",
            "ingested_at": None,
        }

    def problem(status: int, detail: str) -> httpx.Response:
        return httpx.Response(
            status,
            json={"title": "x", "status": status, "detail": detail, "code": str(status)},
            headers={"content-type": "application/problem+json"},
        )

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        path = request.url.path
        if path == "/metrics":
            return httpx.Response(200, text="holdfast_requests_total 3\n")
        if key not in docs:
            return problem(401, "bad key")
        own = docs[key]
        if path == "/v1/documents" and request.method == "GET":
            return httpx.Response(200, json={"documents": [doc_out(own)], "next_offset": None})
        if path.startswith("/v1/documents/"):
            return problem(404 if request.method == "DELETE" else 405, "no such document")
        if path.startswith("/v1/jobs/"):
            return problem(404, "no such job")
        if path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "chat-default"}]})
        body = json.loads(request.content or b"{}")
        shown = [own]
        if leak and "Salary" in json.dumps(body):
            shown.append(HR)
        results = [
            {
                "doc_id": d.doc_id,
                "chunk_id": d.doc_id[:8] + "c" * 24,
                "text": text[d.doc_id],
                "source": d.source,
                "title": d.title,
            }
            for d in shown
        ]
        if path == "/v1/search":
            return httpx.Response(200, json={"results": results})
        return httpx.Response(200, json={"answer": "ok", "citations": results})

    return httpx.MockTransport(handler)


CALLERS = [Caller("hr", "hr", frozenset({"hr"})), Caller("eng", "eng", frozenset({"eng"}))]


def test_the_engine_finds_no_leak_where_groups_hold() -> None:
    with ProbeClient("http://gw", transport=fake_gateway(leak=False)) as client:
        report = run_probes(client, CALLERS, seed=11, probes=300)
    assert report.leaks == [], report.failure_text()
    assert report.total >= 300 and report.foreign_pairs == 2
    assert all(report.probes[s] for s in Surface)


def test_the_engine_reports_a_document_served_across_groups() -> None:
    with ProbeClient("http://gw", transport=fake_gateway(leak=True)) as client:
        report = run_probes(client, CALLERS, seed=11, probes=300)
    leaked = {(leak.probe.caller, leak.kind) for leak in report.leaks}
    assert ("eng", "doc_id") in leaked and ("eng", "text") in leaked
    assert not any(leak.probe.caller == "hr" for leak in report.leaks)
    assert "seed 11" in report.failure_text()
    text_leak = next(leak for leak in report.leaks if leak.kind == "text")
    assert text_leak.value in text_leak.detail  # the finding shows the words around it


def test_excerpt_shows_the_words_around_a_marker_in_sse_frames_too() -> None:
    body = 'data: {"delta": "the \\u00e9t\\u00e9 rota changes every Monday"}\n'
    assert excerpt(body, "Rota Changes", width=6) == "e été rota changes every"
    assert excerpt(body, "absent") == ""


def test_a_refused_key_is_named() -> None:
    callers = [CALLERS[0], Caller("#2", "typo")]
    with (
        ProbeClient("http://gw", transport=fake_gateway(leak=False)) as client,
        pytest.raises(RefusedKeyError, match="#2"),
    ):
        run_probes(client, callers, seed=1, probes=5)
