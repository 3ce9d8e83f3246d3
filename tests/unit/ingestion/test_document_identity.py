"""Document identity (issue: trust boundary, items 1 and 2): a same-named upload by another group
never replaces a document its uploader may not write; identical bytes with new groups move the
document; every stored id is keyed and taken after redaction."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_ingest_batch import BatchStore
from test_pipeline_chunks import DOC, FakeEmbedder, FakeRedactor, write

from ingestion.identity import Identity
from ingestion.pipeline import (
    PARSER_REVISIONS,
    ChunkingPolicy,
    FileResult,
    IngestOptions,
    file_hash,
    ingest_batch,
)

pytestmark = pytest.mark.unit

KEY = Identity(b"unit-test-id-key-0123456789")
HR_SALARIES = "# Salary bands\n\nL5 earns between 90k and 120k.\n"


def upload(
    store: BatchStore,
    path: Path,
    source: str,
    groups: Sequence[str],
    writer: Sequence[str] | None,
    *,
    redactor: FakeRedactor | None = None,
    identity: Identity = KEY,
) -> FileResult:
    options = IngestOptions(
        groups=tuple(groups),
        identity=identity,
        writer_groups=None if writer is None else tuple(writer),
        redact=redactor is not None,
        chunking=ChunkingPolicy(50, 0),
    )
    [result] = ingest_batch(
        [(path, source)], options=options, store=store, embedder=FakeEmbedder(), redactor=redactor
    )
    return result


def texts_in(store: BatchStore, groups: set[str]) -> set[str]:
    return {c.text for c in store.upserted if set(c.access_groups) & groups}


def test_a_same_named_upload_by_another_group_leaves_the_original_alone(tmp_path: Path) -> None:
    store = BatchStore()
    hr = upload(store, write(tmp_path, "a.md", HR_SALARIES), "hr/salary-bands.md", ["hr"], ["hr"])
    forged = write(tmp_path, "b.md", "# Salary bands\n\nNothing to see here.\n")
    eng = upload(store, forged, "hr/salary-bands.md", ["eng"], ["eng"])
    assert (hr.status, eng.status) == ("indexed", "indexed")
    assert hr.doc_id != eng.doc_id
    assert eng.stale_deleted == 0  # nothing of HR's was replaced, and the result says nothing
    assert "L5 earns between 90k and 120k." in texts_in(store, {"hr"})


def test_an_uploader_in_every_group_of_a_namesake_replaces_it(tmp_path: Path) -> None:
    store = BatchStore()
    upload(store, write(tmp_path, "a.md", HR_SALARIES), "salary.md", ["hr"], ["hr"])
    newer = write(tmp_path, "b.md", "# Salary bands\n\nL5 earns between 95k and 125k.\n")
    result = upload(store, newer, "salary.md", ["hr", "finance"], ["hr", "finance"])
    assert result.status == "indexed" and result.stale_deleted == 1
    assert texts_in(store, {"hr", "finance"}) == {"L5 earns between 95k and 125k."}


def test_identical_bytes_with_narrower_groups_narrow_the_document(tmp_path: Path) -> None:
    store = BatchStore()
    path = write(tmp_path, "a.md", HR_SALARIES)
    upload(store, path, "salary.md", ["hr", "eng"], None)
    again = upload(store, path, "salary.md", ["hr"], None)
    assert again.status == "indexed"
    assert {tuple(c.access_groups) for c in store.upserted} == {("hr",)}
    assert texts_in(store, {"eng"}) == set()


def test_an_upload_to_disjoint_groups_keeps_the_other_teams_namesake(tmp_path: Path) -> None:
    store = BatchStore()  # an admin may write both, but team README files are two documents
    upload(
        store,
        write(tmp_path, "a.md", "# Readme\n\nTeam A builds things.\n"),
        "README.md",
        ["a"],
        None,
    )
    upload(
        store,
        write(tmp_path, "b.md", "# Readme\n\nTeam B ships things.\n"),
        "README.md",
        ["b"],
        None,
    )
    assert texts_in(store, {"a"}) == {"Team A builds things."}
    assert texts_in(store, {"b"}) == {"Team B ships things."}


def test_an_unchanged_upload_is_still_recognised(tmp_path: Path) -> None:
    store = BatchStore()
    path = write(tmp_path, "a.md", DOC)
    first = upload(store, path, "policy.md", ["hr"], ["hr"])
    second = upload(store, path, "policy.md", ["hr"], ["hr"])
    assert (first.status, second.status) == ("indexed", "unchanged")
    assert first.doc_id == second.doc_id


def test_a_file_indexed_by_an_older_parser_is_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A format's parser revision is part of the file hash: after an upgrade that changes what
    its parsing indexes, the same bytes count as changed; other formats keep their hashes."""
    store = BatchStore()
    path = write(tmp_path, "a.md", DOC)
    first = upload(store, path, "policy.md", ["hr"], ["hr"])
    monkeypatch.setitem(PARSER_REVISIONS, "markdown", PARSER_REVISIONS["markdown"] + 1)
    second = upload(store, path, "policy.md", ["hr"], ["hr"])
    third = upload(store, path, "policy.md", ["hr"], ["hr"])
    assert (first.status, second.status, third.status) == ("indexed", "indexed", "unchanged")
    raw = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_hash(path, KEY, "pdf") == KEY.file_hash(raw)  # no revision: as before


def test_ids_are_keyed_and_taken_after_redaction(tmp_path: Path) -> None:
    store = BatchStore()
    body = "# Contacts\n\nWrite to jane.doe@example.com for access.\n"
    path = write(tmp_path, "a.md", body)
    upload(store, path, "contacts.md", ["ops"], ["ops"], redactor=FakeRedactor())
    [chunk] = store.upserted
    assert "jane.doe@example.com" not in chunk.text
    assert chunk.content_hash == KEY.content_hash(chunk.text)
    assert chunk.chunk_id == KEY.chunk_id(chunk.doc_id, 0, chunk.content_hash, chunk.file_hash)
    raw = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = {chunk.chunk_id, chunk.parent_id, chunk.content_hash, chunk.file_hash, chunk.doc_id}
    assert raw not in stored and chunk.file_hash == KEY.file_hash(f"{raw}+parser2")
    # the same upload under another key shares no id with this one
    other = BatchStore()
    upload(
        other,
        path,
        "contacts.md",
        ["ops"],
        ["ops"],
        redactor=FakeRedactor(),
        identity=Identity(b"another-key-0123456789abcdef"),
    )
    [twin] = other.upserted
    assert twin.text == chunk.text
    assert (
        not {twin.chunk_id, twin.parent_id, twin.content_hash, twin.file_hash, twin.doc_id} & stored
    )


def test_no_unkeyed_digest_of_a_short_secret_is_an_id() -> None:
    """The finding: a phone number was recovered from a chunk id by trying every number."""
    phone = "555-0142"
    ids = {KEY.content_hash(phone), KEY.chunk_id("d", 0, KEY.content_hash(phone))}
    unkeyed = {hashlib.sha256(p.encode()).hexdigest()[:32] for p in ("555-0142",)}
    for candidate in itertools.chain(ids, (i[:32] for i in ids)):
        assert candidate not in unkeyed
    with pytest.raises(ValueError, match="at least"):
        Identity(b"short")


def test_a_document_id_depends_on_the_group_set_not_its_order() -> None:
    assert KEY.doc_id("a.md", ["hr", "eng"]) == KEY.doc_id("a.md", ["eng", "hr", "hr"])
    assert KEY.doc_id("a.md", ["hr"]) != KEY.doc_id("a.md", ["eng"])
