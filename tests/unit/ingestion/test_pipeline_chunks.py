"""build_chunks and ingest_files with deterministic fake ports."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ingestion.identity import Identity
from ingestion.pipeline import ChunkingPolicy, FileResult, build_chunks, ingest_files
from ingestion.validation import Limits
from services.errors import InvalidRequestError
from services.records import Chunk, HealthStatus, Redaction, SearchHit

pytestmark = pytest.mark.unit

POLICY = ChunkingPolicy(max_tokens=50, overlap_tokens=0)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")

DOC = """# Policy

## Leave

Staff get 25 days of leave.

## Travel

Book travel through the portal.
"""


def words(text: str) -> int:
    return len(text.split())


class FakeEmbedder:
    def __init__(self) -> None:
        self.documents: list[str] = []

    @property
    def dimensions(self) -> int:
        return 2

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents.extend(texts)
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), 1.0]

    def count_tokens(self, text: str) -> int:
        return words(text)

    def health(self) -> HealthStatus:
        return HealthStatus("embedder", True)


class FakeStore:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.upserted: list[Chunk] = []

    def ensure_schema(self) -> None:
        pass

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
        assert len(chunks) == len(vectors)
        self.events.append(("upsert", [c.chunk_id for c in chunks]))
        self.upserted.extend(chunks)
        return len(chunks)

    def delete_stale(self, current: Sequence[Chunk]) -> dict[str, int]:
        doc_ids = sorted({c.doc_id for c in current})
        self.events.append(("delete_stale", doc_ids))
        return dict.fromkeys(doc_ids, 3)

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        self.events.append(("delete_chunks", sorted(chunk_ids)))
        gone = set(chunk_ids)
        before = len(self.upserted)
        self.upserted = [c for c in self.upserted if c.chunk_id not in gone]
        return before - len(self.upserted)

    def delete_document(self, doc_id: str) -> int:
        self.events.append(("delete_document", doc_id))
        return 3

    def document_hash(self, doc_id: str) -> str | None:
        return None

    def documents_with_hash(self, file_hash: str) -> list[Any]:
        return []

    def file_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        return {}

    def documents_with_hashes(self, file_hashes: Sequence[str]) -> dict[str, list[Any]]:
        return {}

    def documents_named(self, sources: Sequence[str]) -> dict[str, list[Any]]:
        return {}

    def delete_documents(self, doc_ids: Sequence[str]) -> dict[str, int]:
        return {d: self.delete_document(d) for d in doc_ids}

    def document(self, doc_id: str) -> Any:
        return None

    def documents(self, **kwargs: Any) -> list[Any]:
        return []

    def search(self, **kwargs: Any) -> list[SearchHit]:
        return []

    def count(self) -> int:
        return len(self.upserted)

    def health(self) -> HealthStatus:
        return HealthStatus("store", True)


class FakeRedactor:
    """Replaces e-mail addresses, the way Presidio would, and counts them."""

    def redact(self, text: str) -> Redaction:
        found = EMAIL.findall(text)
        counts = {"EMAIL_ADDRESS": len(found)} if found else {}
        return Redaction(EMAIL.sub("<EMAIL_ADDRESS>", text), counts)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def chunks_of(path: Path, groups: Sequence[str] = ("hr",)) -> list[Chunk]:
    return build_chunks(
        path,
        source=str(path.resolve()),
        doc_type="markdown",
        groups=groups,
        policy=POLICY,
        limits=Limits(),
        count_tokens=words,
        hashed="h",
        identity=Identity(b"unit-test-id-key-0123456789"),
    )[0]


def ingest(
    paths: Sequence[Path],
    *,
    groups: Sequence[str] = ("hr",),
    redactor: FakeRedactor | None = None,
    store: FakeStore | None = None,
    embedder: FakeEmbedder | None = None,
    on_file: Any = None,
) -> Any:
    return ingest_files(
        paths,
        groups=groups,
        store=store or FakeStore(),
        embedder=embedder or FakeEmbedder(),
        redactor=redactor,
        policy=POLICY,
        identity=Identity(b"unit-test-id-key-0123456789"),
        on_file=on_file,
    )


# --- build_chunks ------------------------------------------------------------------------------


def test_chunk_ids_are_stable_across_runs_for_the_same_content(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.md", DOC)
    first, second = chunks_of(path), chunks_of(path)
    assert len(first) == 2
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert [c.content_hash for c in first] == [c.content_hash for c in second]


def test_chunk_ids_change_when_content_changes_but_doc_id_does_not(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.md", DOC)
    before = chunks_of(path)
    write(tmp_path, "policy.md", DOC.replace("25 days", "30 days"))
    after = chunks_of(path)
    assert before[0].chunk_id != after[0].chunk_id
    assert before[1].chunk_id == after[1].chunk_id  # the unchanged section keeps its id
    assert {c.doc_id for c in before} == {c.doc_id for c in after}
    assert len({c.doc_id for c in before}) == 1


def test_different_files_get_different_doc_ids(tmp_path: Path) -> None:
    a = chunks_of(write(tmp_path, "a.md", DOC))
    b = chunks_of(write(tmp_path, "b.md", DOC))
    assert a[0].doc_id != b[0].doc_id
    assert a[0].chunk_id != b[0].chunk_id


def test_access_groups_are_copied_onto_every_chunk(tmp_path: Path) -> None:
    chunks = chunks_of(write(tmp_path, "policy.md", DOC), groups=["hr", "finance"])
    assert chunks
    assert all(c.access_groups == ("hr", "finance") for c in chunks)


def test_chunks_carry_title_section_position_and_source(tmp_path: Path) -> None:
    path = write(tmp_path, "policy.md", DOC)
    chunks = chunks_of(path)
    assert [(c.title, c.section, c.position) for c in chunks] == [
        ("Policy", "Leave", 0),
        ("Policy", "Travel", 1),
    ]
    assert all(c.source == str(path.resolve()) for c in chunks)
    assert all(c.modified_at is not None and c.modified_at.tzinfo is not None for c in chunks)


def test_title_falls_back_to_the_file_stem(tmp_path: Path) -> None:
    chunks = chunks_of(write(tmp_path, "expenses-guide.md", "Just a paragraph."))
    assert [c.title for c in chunks] == ["expenses-guide"]


# --- ingest_files ------------------------------------------------------------------------------


def test_unreadable_files_are_rejected_one_by_one_while_the_rest_are_indexed(
    tmp_path: Path,
) -> None:
    good = write(tmp_path, "good.md", DOC)
    empty = write(tmp_path, "empty.md", "  \n\n")
    binary = write(tmp_path, "binary.md", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    text = write(tmp_path, "notes.bin", "plain text")
    store = FakeStore()
    seen: list[FileResult] = []

    report = ingest([empty, good, binary, text], store=store, on_file=seen.append)

    assert [(f.source, f.status) for f in report.files] == [
        (str(empty), "rejected"),
        (str(good), "indexed"),
        (str(binary), "rejected"),
        (str(text), "rejected"),
    ]
    reasons = {f.source: f.reason for f in report.files if f.status == "rejected"}
    assert reasons[str(empty)] == "empty file"
    assert reasons[str(binary)] == "not text (no plausible character encoding)"
    assert reasons[str(text)] == "unsupported file type .bin"
    assert (report.indexed, report.rejected, report.chunks) == (1, 3, 2)
    assert {c.source for c in store.upserted} == {str(good.resolve())}
    assert seen == report.files


def test_file_with_only_headings_is_rejected_as_having_no_text(tmp_path: Path) -> None:
    report = ingest([write(tmp_path, "bare.md", "# Title\n\n## Section\n")])
    assert [(f.status, f.reason) for f in report.files] == [("rejected", "no text content")]


@pytest.mark.parametrize("groups", [[], ["", "   "]])
def test_ingest_without_an_access_group_is_refused(tmp_path: Path, groups: list[str]) -> None:
    store = FakeStore()
    with pytest.raises(InvalidRequestError, match="access group"):
        ingest([write(tmp_path, "policy.md", DOC)], groups=groups, store=store)
    assert store.events == []


def test_groups_are_stripped_and_blanks_dropped(tmp_path: Path) -> None:
    store = FakeStore()
    ingest([write(tmp_path, "policy.md", DOC)], groups=[" hr ", "", "eng"], store=store)
    assert {c.access_groups for c in store.upserted} == {("hr", "eng")}


def test_redactor_output_replaces_chunk_text_and_counts_are_tallied(tmp_path: Path) -> None:
    doc = DOC.replace("25 days of leave.", "25 days; ask alice@example.com or bob@example.org.")
    doc = doc.replace("the portal.", "the portal or carol@example.net.")
    store, embedder = FakeStore(), FakeEmbedder()
    report = ingest(
        [write(tmp_path, "policy.md", doc)], redactor=FakeRedactor(), store=store, embedder=embedder
    )
    assert report.redactions == {"EMAIL_ADDRESS": 3}
    stored = " ".join(c.text for c in store.upserted)
    assert "<EMAIL_ADDRESS>" in stored
    assert not EMAIL.search(stored)
    assert not any(EMAIL.search(t) for t in embedder.documents)


def test_redacted_chunk_gets_the_hash_of_its_redacted_text(tmp_path: Path) -> None:
    store = FakeStore()
    ingest(
        [write(tmp_path, "p.md", "Mail alice@example.com today.")],
        redactor=FakeRedactor(),
        store=store,
    )
    (tmp_path / "clean").mkdir()
    clean = chunks_of(write(tmp_path / "clean", "q.md", "Mail <EMAIL_ADDRESS> today."))
    assert store.upserted[0].content_hash == clean[0].content_hash


def test_without_a_redactor_text_is_left_as_written(tmp_path: Path) -> None:
    store = FakeStore()
    report = ingest(
        [write(tmp_path, "p.md", "Mail alice@example.com today.")], redactor=None, store=store
    )
    assert [c.text for c in store.upserted] == ["Mail alice@example.com today."]
    assert report.redactions == {}


def test_pii_in_headings_is_redacted_before_storing_and_embedding(tmp_path: Path) -> None:
    store, embedder = FakeStore(), FakeEmbedder()
    doc = "# Case of alice@example.com\n\n## Notes on bob@example.org\n\nSome notes."
    ingest(
        [write(tmp_path, "case.md", doc)], redactor=FakeRedactor(), store=store, embedder=embedder
    )
    assert not any(EMAIL.search(c.title + c.section) for c in store.upserted)
    assert not any(EMAIL.search(t) for t in embedder.documents)


def test_the_new_version_is_written_whole_before_the_old_one_is_deleted(
    tmp_path: Path,
) -> None:
    store = FakeStore()
    report = ingest([write(tmp_path, "policy.md", DOC)], store=store)
    first, rest = store.upserted[-1], store.upserted[:-1]
    doc_id = first.doc_id
    assert first.position == 0  # written last: a document counts as indexed once all is in
    assert store.events == [
        ("upsert", [c.chunk_id for c in rest]),
        ("upsert", [first.chunk_id]),
        ("delete_stale", [doc_id]),
    ]
    assert report.files[0].stale_deleted == 3
    assert report.files[0].doc_id == doc_id


def test_embedding_input_carries_the_heading_path(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    ingest([write(tmp_path, "policy.md", DOC)], embedder=embedder)
    assert embedder.documents == [
        "Policy > Leave\nStaff get 25 days of leave.",
        "Policy > Travel\nBook travel through the portal.",
    ]
