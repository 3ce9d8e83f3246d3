"""The reindex behind the write fence, against the in-memory index of test_reindex_procedure and
a real SQLite fence: a delete that arrives during the last re-sync waits for the switch and lands
in the new collection; a job queued by then refuses the switch; a rollback brings the previous
collection up to date first (deleted stays deleted, written is embedded with its model), or
refuses when that model is missing. The real Weaviate: tests/integration/
test_index_consistency.py."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gateway.models.reindex import ReindexRefusedError, rollback
from gateway.models.write_fence import SqliteWriteFence, writing
from services.ports import Embedder
from services.records import IndexRecord
from tests.unit.gateway.test_reindex_procedure import (
    ALIAS,
    LengthEmbedder,
    _index,
    _vector,
    run,
)

pytestmark = pytest.mark.unit


def _fence(tmp_path: Path) -> SqliteWriteFence:
    return SqliteWriteFence(tmp_path / "write-fence.db")


def test_a_delete_during_the_last_resync_waits_and_lands_in_the_new_collection(
    tmp_path: Path,
) -> None:
    index = _index()
    switched_at: list[float] = []
    deleted: list[tuple[str, float]] = []
    point = index.point_alias

    def point_alias(target: str) -> str | None:
        switched_at.append(time.monotonic())
        return point(target)

    index.point_alias = point_alias  # type: ignore[method-assign]

    def delete_c2() -> None:  # DELETE /v1/documents/... as the route runs it
        with writing(_fence(tmp_path), "DELETE", wait_s=5):
            assert index.target is not None
            del index.collections[index.target]["c2"]
            deleted.append((index.target, time.monotonic()))

    calls: list[threading.Thread] = []

    def jobs_busy() -> None:
        if not calls and _fence(tmp_path).fence_holder():  # inside the fence: a DELETE comes
            calls.append(threading.Thread(target=delete_c2))
            calls[0].start()
            time.sleep(0.3)  # it is waiting, not deleting
            assert not deleted

    result = run(index, embedding_model="new", jobs_busy=jobs_busy, fence=_fence(tmp_path))
    calls[0].join(5)
    assert result.switched and deleted and deleted[0][0] == result.shadow
    assert deleted[0][1] > switched_at[-1]
    assert "c2" not in index.collections[result.shadow]  # the re-sync after resurrected nothing
    assert "c2" in index.collections[result.source]  # the old one is brought up at a rollback
    assert _fence(tmp_path).fence_holder() is None


def test_a_job_queued_by_the_switch_refuses_it_and_lowers_the_fence(tmp_path: Path) -> None:
    index = _index()
    answers = iter([None, "job-9"])  # idle at the start, queued by the switch
    with pytest.raises(ReindexRefusedError, match="job-9 started during the reindex"):
        run(index, embedding_model="new", jobs_busy=lambda: next(answers), fence=_fence(tmp_path))
    assert index.target == f"{ALIAS}_1"
    assert _fence(tmp_path).fence_holder() is None


def test_a_rollback_deletes_what_was_deleted_and_copies_what_was_written_since_the_switch(
    tmp_path: Path,
) -> None:
    index = _index()
    result = run(index, embedding_model="new", jobs_busy=lambda: None)
    del index.collections[result.shadow]["c1"]  # deleted through the alias after the switch
    index.write("late", "written after the switch")
    loaded: list[str] = []

    def load_embedder(record: IndexRecord) -> Embedder:
        loaded.append(record.name)
        return LengthEmbedder()

    back = rollback(index, load_embedder=load_embedder, fence=_fence(tmp_path))
    assert (back.source, back.target, back.synced) == (result.shadow, result.source, 2)
    assert index.target == result.source and loaded == [result.source]
    live = index.collections[result.source]
    assert set(live) == set(index.collections[result.shadow]) == {"c0", "c2", "c3", "c4", "late"}
    props, vector = live["late"]
    assert vector == _vector(props)  # embedded with the previous collection's model


def test_a_rollback_that_would_need_a_missing_model_switches_nothing(tmp_path: Path) -> None:
    index = _index()
    result = run(index, embedding_model="new", jobs_busy=lambda: None)
    index.write("late", "written after the switch")

    def missing(record: IndexRecord) -> Embedder:
        raise ReindexRefusedError(f"no alias serves {record.embedding_model}")

    with pytest.raises(ReindexRefusedError, match="no alias serves old"):
        rollback(index, load_embedder=missing, fence=_fence(tmp_path))
    assert index.target == result.shadow
    # with nothing written since, no model is needed
    del index.collections[result.shadow]["late"]
    back = rollback(index, load_embedder=missing)
    assert back.synced == 0 and index.target == result.source
