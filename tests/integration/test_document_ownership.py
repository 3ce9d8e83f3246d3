"""Trust boundary findings 1, 2 and 4 against the real stack (gateway, Weaviate, Presidio):

1. an ordinary key uploading a file under the name of another group's document does not replace
   it, and is told nothing about it; identical bytes uploaded again with narrower groups narrow
   the document;
2. stored ids are keyed: the unkeyed hash an attacker could brute-force is not what is returned;
4. a document an admin indexed raw (redaction ``none``) is redacted on the way out, in search
   hits and in citation quotes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.security.keys import KeyStore
from tests.integration.ingest_api import ingest

pytestmark = pytest.mark.integration

BANDS = "# Salary bands\n\nSalary band L5 pays between 91,000 and 118,000 EUR a year.\n"
FORGED = "# Salary bands\n\nSalary band L5 is not published any more; ask the eng lead.\n"
ROTA = "# Quokka rota\n\nThe quokka feeding rota for the lab rotates every Tuesday.\n"
RAW_EMAIL = "wilhelmina.vandersloot@quokka-logistics.de"  # example.org is kept (RFC 2606)
RAW_PHONE = "+1 415 555 0199"
CONTACTS = (
    "# Escalation contacts\n\n"
    f"For pager escalations write to {RAW_EMAIL} or call {RAW_PHONE} at any hour.\n"
)


def _key(live_stack: Any, name: str, groups: list[str], roles: list[str]) -> str:
    _, key = KeyStore(live_stack.settings.keys_db).create(name, groups=groups, roles=roles)
    return key


def _search(live_stack: Any, key: str, query: str) -> list[dict[str, Any]]:
    response = live_stack.post("/v1/search", {"query": query, "top_k": 10}, key)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def _texts(results: list[dict[str, Any]]) -> str:
    return " ".join(
        " ".join([r["text"], r["title"], r["section"], *(p["text"] for p in r["passages"])])
        for r in results
    )


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_another_groups_upload_under_the_same_name_replaces_nothing(
    live_stack: Any, tmp_path: Path
) -> None:
    hr = _key(live_stack, "hr-writer", ["hr-own"], ["ingest", "query"])
    eng = _key(live_stack, "eng-attacker", ["eng-own"], ["ingest", "query"])
    name = "hr/salary-bands.md"
    first = ingest(
        live_stack.url, hr, [_write(tmp_path, "a.md", BANDS)], groups="hr-own", names=[name]
    )
    assert first["status"] == "succeeded", first
    forged = ingest(
        live_stack.url, eng, [_write(tmp_path, "b.md", FORGED)], groups="eng-own", names=[name]
    )
    assert forged["status"] == "succeeded", forged
    [result] = forged["files"]
    assert result["status"] == "indexed" and result["doc_id"] != first["files"][0]["doc_id"]
    assert result["reason"] == ""  # nothing says HR holds a file of that name
    assert "91,000 and 118,000" in _texts(_search(live_stack, hr, "salary band L5"))
    assert "91,000" not in _texts(_search(live_stack, eng, "salary band L5"))


def test_identical_bytes_with_narrower_groups_narrow_the_document(
    live_stack: Any, tmp_path: Path
) -> None:
    lab = _key(live_stack, "lab-member", ["lab-own"], ["query"])
    visitors = _key(live_stack, "visitor", ["visitors-own"], ["query"])
    path = _write(tmp_path, "rota.md", ROTA)
    wide = ingest(
        live_stack.url,
        live_stack.admin_key,
        [path],
        groups="lab-own,visitors-own",
        names=["rota.md"],
    )
    assert wide["status"] == "succeeded", wide
    assert "quokka" in _texts(_search(live_stack, visitors, "quokka feeding rota"))
    narrow = ingest(
        live_stack.url, live_stack.admin_key, [path], groups="lab-own", names=["rota.md"]
    )
    assert narrow["files"][0]["status"] == "indexed", narrow  # not skipped as unchanged
    assert "quokka" not in _texts(_search(live_stack, visitors, "quokka feeding rota"))
    assert "quokka" in _texts(_search(live_stack, lab, "quokka feeding rota"))


def test_a_raw_upload_is_redacted_in_search_hits_citations_and_ids(
    live_stack: Any, tmp_path: Path
) -> None:
    ops = _key(live_stack, "ops-reader", ["ops-own"], ["query"])
    raw = ingest(
        live_stack.url,
        live_stack.admin_key,
        [_write(tmp_path, "contacts.md", CONTACTS)],
        groups="ops-own",
        profile="none",
        names=["ops/contacts.md"],
    )
    assert raw["status"] == "succeeded" and raw["redaction_profile"] == "none", raw
    results = _search(live_stack, ops, "pager escalations contact")
    text = _texts(results)
    assert "pager escalations" in text
    assert RAW_EMAIL not in text and "555 0199" not in text
    answer = httpx.post(
        f"{live_stack.url}/v1/query",
        json={"question": "Whom do I write to for pager escalations?"},
        headers={"Authorization": f"Bearer {ops}"},
        timeout=300.0,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert RAW_EMAIL not in answer.text and "555 0199" not in answer.text
    assert any("pager escalations" in c["quote"] for c in body["citations"]) or body["refused"]
    # the ids: with the unkeyed scheme, a guess of the raw text reproduced the chunk id
    [hit] = [r for r in results if "pager escalations" in r["text"]]
    section_and_body = "# Escalation contacts\n\n" + CONTACTS.split("\n\n", 1)[1]
    for guess in (CONTACTS, section_and_body, CONTACTS.split("\n\n", 1)[1].strip()):
        content = hashlib.sha256(guess.encode()).hexdigest()
        unkeyed = hashlib.sha256(f"{hit['doc_id']}\x1f0\x1f{content}".encode()).hexdigest()[:32]
        assert hit["chunk_id"] != unkeyed
    legacy_doc = hashlib.sha256(b"file\x1fops/contacts.md").hexdigest()[:32]
    assert hit["doc_id"] != legacy_doc
