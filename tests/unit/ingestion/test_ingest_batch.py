"""Batched ingestion: stages run across files, per-file semantics stay those of one file at a time;
and the OpenTelemetry stage spans carry counts, never text."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_pipeline_chunks import DOC, FakeEmbedder, FakeRedactor, FakeStore, ingest, write

from ingestion.identity import Identity
from ingestion.pipeline import BATCH_FILES
from services.records import DocumentInfo

pytestmark = pytest.mark.unit


class CountingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return super().embed_documents(texts)


class BatchStore(FakeStore):
    """A store with the batched lookups: remembers indexed documents by their first chunk."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def _heads(self) -> list[Any]:
        return [c for c in self.upserted if c.position == 0]

    def file_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        self.lookups += 1
        return {c.doc_id: c.file_hash for c in self._heads() if c.doc_id in doc_ids}

    def documents_with_hashes(self, hashes: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        return self._documents_by("file_hash", hashes)

    def documents_named(self, sources: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        return self._documents_by("source", sources)

    def _documents_by(self, field: str, values: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        self.lookups += 1
        found: dict[str, list[DocumentInfo]] = {}
        for c in self._heads():
            if getattr(c, field) in values:
                info = DocumentInfo(
                    c.doc_id, c.source, c.title, c.doc_type, c.access_groups, c.file_hash
                )
                found.setdefault(getattr(c, field), []).append(info)
        return found

    def delete_documents(self, doc_ids: Sequence[str]) -> dict[str, int]:
        self.events.append(("delete_documents", sorted(doc_ids)))
        gone = {d: sum(1 for c in self.upserted if c.doc_id == d) for d in doc_ids}
        self.upserted = [c for c in self.upserted if c.doc_id not in doc_ids]
        return gone

    def delete_stale(self, current: Sequence[Any]) -> dict[str, int]:
        keep = {c.chunk_id for c in current}
        doc_ids = sorted({c.doc_id for c in current})
        self.events.append(("delete_stale", doc_ids))
        stale = [c for c in self.upserted if c.doc_id in doc_ids and c.chunk_id not in keep]
        self.upserted = [c for c in self.upserted if c not in stale]
        return {d: sum(1 for c in stale if c.doc_id == d) for d in doc_ids}


def many_docs(tmp_path: Path, n: int) -> list[Path]:
    return [
        write(
            tmp_path,
            f"doc-{i}.md",
            DOC.replace("25 days", f"{i} days").replace("# Policy", f"# P{i}"),
        )
        for i in range(n)
    ]


def test_embedding_runs_in_full_batches_across_files(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    report = ingest(many_docs(tmp_path, 40), embedder=embedder, store=BatchStore())
    assert report.indexed == 40 and report.chunks == 80
    # BATCH_FILES files a batch, 2 chunks each: full calls, then the rest; not 40 calls of 2
    per_batch = 2 * BATCH_FILES
    assert embedder.calls == [per_batch, per_batch, 80 - 2 * per_batch]


def test_one_lookup_and_one_delete_per_batch(tmp_path: Path) -> None:
    store = BatchStore()
    ingest(many_docs(tmp_path, 10), store=store)
    assert store.lookups == 3  # indexed hashes, twins by hash, namesakes by name
    assert [e[0] for e in store.events] == ["upsert", "upsert", "delete_stale"]


def test_unchanged_files_are_skipped_and_a_changed_one_replaces_its_chunks(tmp_path: Path) -> None:
    store = BatchStore()
    paths = many_docs(tmp_path, 5)
    ingest(paths, store=store)
    before = {c.chunk_id for c in store.upserted}
    write(tmp_path, "doc-2.md", DOC.replace("25 days", "99 days"))
    report = ingest(paths, store=store)
    assert [f.status for f in report.files] == ["unchanged"] * 2 + ["indexed"] + ["unchanged"] * 2
    assert report.files[2].stale_deleted == 2
    after = {c.chunk_id for c in store.upserted}
    assert len(after) == len(before) == 10
    assert {c.text for c in store.upserted if c.doc_id == report.files[2].doc_id} >= {
        "Staff get 99 days of leave."
    }


def test_identical_files_in_one_batch_are_indexed_once(tmp_path: Path) -> None:
    a = write(tmp_path, "a.md", DOC)
    b = write(tmp_path, "b.md", DOC)
    store = BatchStore()
    report = ingest([a, b], store=store)
    assert [f.status for f in report.files] == ["indexed", "duplicate"]
    assert report.files[1].doc_id == report.files[0].doc_id
    assert {c.source for c in store.upserted} == {str(a.resolve())}


def test_a_copy_of_a_rejected_file_is_rejected_with_the_same_reason(tmp_path: Path) -> None:
    a = write(tmp_path, "a.md", "# Title\n")
    b = write(tmp_path, "b.md", "# Title\n")
    report = ingest([a, b], store=BatchStore())
    assert [(f.status, f.reason) for f in report.files] == [("rejected", "no text content")] * 2


def test_the_same_source_twice_in_a_batch_ends_as_one_by_one(tmp_path: Path) -> None:
    path = write(tmp_path, "a.md", DOC)
    store = BatchStore()
    report = ingest([path, path], store=store)
    assert [f.status for f in report.files] == ["indexed", "unchanged"]
    assert len(store.upserted) == 2


def test_rejected_files_do_not_touch_the_store(tmp_path: Path) -> None:
    store = BatchStore()
    report = ingest([write(tmp_path, "e.md", ""), write(tmp_path, "x.bin", "x")], store=store)
    assert report.rejected == 2
    assert store.events == [] and store.lookups == 0


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def test_a_small_ingest_produces_the_five_stage_spans_with_counts_only(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    secret = "Mail alice@example.com about the 25 days."
    paths = [write(tmp_path, "a.md", DOC), write(tmp_path, "b.md", f"# Case\n\n{secret}\n")]
    from ingestion.pipeline import ChunkingPolicy, ingest_files

    report = ingest_files(
        paths,
        groups=["hr"],
        store=BatchStore(),
        embedder=FakeEmbedder(),
        redactor=FakeRedactor(),
        policy=ChunkingPolicy(50, 0),
        identity=Identity(b"unit-test-id-key-0123456789"),
        tracer=provider.get_tracer("test"),
    )
    assert report.indexed == 2
    finished = exporter.get_finished_spans()
    names = [s.name for s in finished]
    assert names.count("ingest.parse") == names.count("ingest.chunk") == 2  # one per file
    for stage in ("ingest.redact", "ingest.embed", "ingest.index"):
        assert names.count(stage) == 1  # one per batch
    by_name = {s.name: s for s in finished}
    batch = by_name["ingest.batch"]
    for span in finished:
        if span.name != "ingest.batch":
            assert span.parent is not None and span.parent.span_id == batch.context.span_id
    attrs = {name: dict(s.attributes or {}) for name, s in by_name.items()}
    assert attrs["ingest.redact"]["redaction.entities.EMAIL_ADDRESS"] == 1
    assert attrs["ingest.embed"]["chunks"] == report.chunks == 3
    assert sorted(attrs["ingest.index"]["doc_ids"]) == sorted(f.doc_id for f in report.files)  # type: ignore[arg-type]
    assert attrs["ingest.chunk"]["chunks"] >= 1
    values = [str(v) for s in finished for v in (s.attributes or {}).values()]
    assert not any("alice" in v or "25 days" in v for v in values)
