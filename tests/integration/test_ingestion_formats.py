"""Real files through the real gateway API into the real Weaviate: formats, tables, OCR,
validation, PII, incremental updates, dedup, delete, permissions."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import httpx
import pytest

from gateway.cli.ingest import within_rate_limit
from gateway.security.keys import KeyStore
from services.records import Chunk
from tests.corpus_builder.build import (
    LOOKALIKE_PII,
    PII,
    build_corpus,
    lookalike_pii_docx,
    pii_file,
    text_files,
)
from tests.integration.conftest import LiveStack
from tests.integration.ingest_api import audit_records, ingest, upload

pytestmark = pytest.mark.integration


def chunks_of(live_stack: LiveStack, doc_id: str) -> list[Chunk]:
    from weaviate.classes.query import Filter

    from services.weaviate_common import chunk_from as _chunk_from

    client = live_stack.components.store._live
    collection = client.collections.use(live_stack.settings.weaviate.collection)
    found = collection.query.fetch_objects(
        filters=Filter.by_property("doc_id").equal(doc_id), limit=1000
    )
    return sorted(
        (_chunk_from(dict(o.properties)) for o in found.objects), key=lambda c: c.position
    )


@pytest.fixture(scope="module")
def corpus_job(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    files = build_corpus(tmp_path_factory.mktemp("corpus"))
    # Redaction off here: the small spaCy NER tags table words ("Item") as names; PII has its
    # own test below.
    body = ingest(
        live_stack.url, live_stack.admin_key, list(files.values()), groups="ops", redact=False
    )
    body["by_role"] = {
        role: next(f for f in body["files"] if f["source"] == str(path))
        for role, path in files.items()
    }
    return body


def test_bad_files_are_rejected_with_reasons_while_the_rest_index(corpus_job: dict) -> None:
    roles = corpus_job["by_role"]
    assert corpus_job["status"] == "partial"
    assert roles["corrupt"]["status"] == "rejected"
    assert "corrupt PDF" in roles["corrupt"]["reason"]
    assert (roles["empty"]["status"], roles["empty"]["reason"]) == ("rejected", "empty file")
    for role in ("pdf", "scan", "docx", "html", "md", "csv", "eml"):
        assert roles[role]["status"] == "indexed", (role, roles[role])
        assert roles[role]["chunks"] >= 1


def test_pdf_keeps_columns_table_pages_and_sections(
    live_stack: LiveStack, corpus_job: dict
) -> None:
    chunks = chunks_of(live_stack, corpus_job["by_role"]["pdf"]["doc_id"])
    assert {c.title for c in chunks} == {"Quarterly Operations Review"}
    by_section = {c.section: c for c in chunks}
    warehouse = by_section["Warehouse capacity"].text
    assert warehouse.startswith("The northern warehouse ran at ninety percent capacity.")
    assert "night shift" not in warehouse  # columns are not interleaved
    table = next(c for c in chunks if "| Region | Orders | Returns |" in c.text)
    assert "| North | 1200 | 31 |" in table.text and "| South | 950 | 18 |" in table.text
    assert by_section["Outlook"].page == 2 and by_section["Warehouse capacity"].page == 1
    assert all(c.doc_type == "pdf" and c.access_groups == ("ops",) for c in chunks)


def test_scanned_pdf_is_read_by_ocr(live_stack: LiveStack, corpus_job: dict) -> None:
    text = " ".join(c.text for c in chunks_of(live_stack, corpus_job["by_role"]["scan"]["doc_id"]))
    assert "boiler inspection" in text.lower()
    assert "basement plant room" in text.lower()


def test_docx_html_csv_keep_headings_and_tables(live_stack: LiveStack, corpus_job: dict) -> None:
    roles = corpus_job["by_role"]
    docx = chunks_of(live_stack, roles["docx"]["doc_id"])
    assert docx[0].title == "Field Manual"
    equipment = next(c for c in docx if c.section == "Safety > Equipment")
    assert "| Item | Count |" in equipment.text and "| Ladder | 2 |" in equipment.text
    html = chunks_of(live_stack, roles["html"]["doc_id"])
    assert html[0].section == "Opening hours"
    assert "| Monday | Lentil soup |" in html[0].text
    csv = chunks_of(live_stack, roles["csv"]["doc_id"])
    assert "| A-1 | Bolt | 0.25 |" in csv[0].text
    eml = chunks_of(live_stack, roles["eml"]["doc_id"])
    assert eml[0].title == "Server room access" and "keypad code" in eml[0].text
    md = chunks_of(live_stack, roles["md"]["doc_id"])
    assert (md[0].title, md[0].section) == ("Parking", "Permits")


def test_chunks_carry_every_field_the_gateway_needs(
    live_stack: LiveStack, corpus_job: dict
) -> None:
    chunks = chunks_of(live_stack, corpus_job["by_role"]["docx"]["doc_id"])
    assert chunks, "the field manual has no chunks: nothing below would be checked"
    for chunk in chunks:
        assert chunk.chunk_id and chunk.parent_id and chunk.content_hash and chunk.file_hash
        assert chunk.source.endswith("field-manual.docx")
        assert chunk.modified_at is not None and chunk.ingested_at is not None


def test_planted_pii_never_reaches_weaviate(live_stack: LiveStack, tmp_path: Path) -> None:
    path = tmp_path / "escalation.md"
    pii_file(path)
    body = ingest(live_stack.url, live_stack.admin_key, [path], groups="ops", redact=True)
    (result,) = body["files"]
    assert result["status"] == "indexed"
    assert {"PERSON", "EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD", "IBAN_CODE"} <= set(
        result["redactions"]
    )
    objects = [f"{title} {text}" for _, title, text in live_stack.components.store.chunk_texts()]
    stored = "\n".join(objects)
    assert "customer escalation" in stored.lower()  # the document itself is there
    for value in [*PII.values(), *PII["name"].split()]:
        assert value not in stored
    for value in (PII["phone"], PII["ssn"], PII["card"], PII["iban"]):
        only_digits = re.sub(r"\D", "", value)
        assert not any(only_digits in re.sub(r"\D", "", obj) for obj in objects)


def _as_read(text: str) -> str:
    """What a reader (or a model) takes from ``text``: compatibility forms, no invisible marks."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def test_pii_written_with_look_alike_characters_never_reaches_weaviate(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    path = tmp_path / "new-starter.docx"
    lookalike_pii_docx(path)
    body = ingest(live_stack.url, live_stack.admin_key, [path], groups="ops", redact=True)
    (result,) = body["files"]
    assert result["status"] == "indexed"
    assert {"EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD", "PHONE_NUMBER"} <= set(
        result["redactions"]
    ), result["redactions"]
    objects = [
        _as_read(f"{title} {text}") for _, title, text in live_stack.components.store.chunk_texts()
    ]
    assert any("the hr desk sets up the new starter" in o.lower() for o in objects)
    for value in (LOOKALIKE_PII["ssn"], LOOKALIKE_PII["card"], LOOKALIKE_PII["phone"]):
        digits = re.sub(r"\D", "", _as_read(value))
        assert not any(digits in re.sub(r"\D", "", obj) for obj in objects), digits
    assert not any("okafor" in obj or "brightwater" in obj for obj in objects)


def test_structured_profile_keeps_names_and_replaces_shaped_values(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    path = tmp_path / "structured" / "escalation.md"
    path.parent.mkdir()
    pii_file(path)
    with path.open("a", encoding="utf-8") as fh:  # other bytes than the strict test's upload
        fh.write("\nFiled again under the structured profile.\n")
    body = ingest(live_stack.url, live_stack.admin_key, [path], groups="ops", profile="structured")
    assert body["redaction_profile"] == "structured"
    (result,) = body["files"]
    assert result["status"] == "indexed"
    assert "PERSON" not in result["redactions"]
    assert {"EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD", "IBAN_CODE"} <= set(result["redactions"])
    stored = "\n".join(
        text for _, _, text in live_stack.components.store.chunk_texts() if "<EMAIL_ADDRESS" in text
    )
    assert PII["name"] in stored  # names stay: structured has no NER
    uploads = audit_records(
        live_stack.url, live_stack.admin_key, endpoint="POST /v1/documents", limit=50
    )
    assert any(r["reason"] == "redaction_structured" for r in uploads), uploads[:3]
    for value in (PII["email"], PII["ssn"], PII["card"], PII["iban"]):
        assert value not in stored


def test_reingest_writes_nothing_and_a_change_replaces_exactly_its_chunks(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    files = text_files(tmp_path / "notes", 12)
    key, url = live_stack.admin_key, live_stack.url
    first = ingest(url, key, files, groups="notes", redact=False)
    assert first["status"] == "succeeded" and first["chunks_written"] > 0
    before = {
        f["doc_id"]: [c.chunk_id for c in chunks_of(live_stack, f["doc_id"])]
        for f in first["files"]
    }
    total = live_stack.components.store.count()

    again = ingest(url, key, files, groups="notes", redact=False)
    assert {f["status"] for f in again["files"]} == {"unchanged"}
    assert again["chunks_written"] == 0
    assert live_stack.components.store.count() == total

    files[3].write_text(files[3].read_text() + "\nA late addendum about the night audit.\n")
    changed = ingest(url, key, files, groups="notes", redact=False)
    statuses = [f["status"] for f in changed["files"]]
    assert statuses.count("indexed") == 1 and statuses[3] == "indexed"
    after = {
        f["doc_id"]: [c.chunk_id for c in chunks_of(live_stack, f["doc_id"])]
        for f in first["files"]
    }
    changed_doc = first["files"][3]["doc_id"]
    assert all(after[d] == before[d] for d in before if d != changed_doc)
    assert after[changed_doc] != before[changed_doc]
    assert not set(after[changed_doc]) & (set(before[changed_doc]) - set(after[changed_doc]))
    assert "night audit" in " ".join(c.text for c in chunks_of(live_stack, changed_doc))
    assert live_stack.components.store.count() == total - len(before[changed_doc]) + len(
        after[changed_doc]
    )


def test_identical_documents_from_two_paths_are_indexed_once(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    (original,) = text_files(tmp_path / "a", 1)
    copy = tmp_path / "b" / "copy-of-note.md"
    copy.parent.mkdir()
    copy.write_bytes(original.read_bytes())
    body = ingest(
        live_stack.url, live_stack.admin_key, [original, copy], groups="dups", redact=False
    )
    assert [f["status"] for f in body["files"]] == ["indexed", "duplicate"]
    assert body["files"][1]["doc_id"] == body["files"][0]["doc_id"]


def test_documents_are_listed_by_group_and_can_be_deleted(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    keys = KeyStore(live_stack.settings.keys_db)
    _, writer = keys.create("writer", groups=["legal"], roles=["ingest", "query"])
    _, outsider = keys.create("outsider", groups=["sales"], roles=["ingest", "query"])
    (path,) = text_files(tmp_path / "legal", 1)
    refused = upload(live_stack.url, writer, [path], groups="legal,finance")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    no_group = upload(live_stack.url, writer, [path], groups="")
    assert no_group.status_code == 400
    reader = upload(live_stack.url, live_stack.handbook_key, [path], groups="handbook")
    assert reader.status_code == 403  # the query role alone may not ingest
    raw = upload(live_stack.url, writer, [path], groups="legal", redact=False)
    assert raw.status_code == 403  # raw PII in the index is an admin's decision
    body = ingest(live_stack.url, writer, [path], groups="legal", profile="structured")
    assert body["redaction_profile"] == "structured"
    doc_id = body["files"][0]["doc_id"]

    def listed(key: str) -> set[str]:
        response = within_rate_limit(  # the job polls before it may have spent the burst
            lambda: httpx.get(
                f"{live_stack.url}/v1/documents?limit=500",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30.0,
            )
        )
        assert response.status_code == 200, response.text
        return {d["doc_id"] for d in response.json()["documents"]}

    assert doc_id in listed(writer)
    assert doc_id not in listed(outsider)
    gone = httpx.delete(
        f"{live_stack.url}/v1/documents/{doc_id}",
        headers={"Authorization": f"Bearer {outsider}"},
        timeout=30.0,
    )
    assert gone.status_code == 404
    deleted = within_rate_limit(
        lambda: httpx.delete(
            f"{live_stack.url}/v1/documents/{doc_id}",
            headers={"Authorization": f"Bearer {writer}"},
            timeout=30.0,
        )
    )
    assert deleted.status_code == 200 and deleted.json()["chunks_deleted"] >= 1
    assert chunks_of(live_stack, doc_id) == []
    assert doc_id not in listed(writer)
