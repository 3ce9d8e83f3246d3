"""A three-node Weaviate cluster on loopback under search load, one node killed (issue 18, item 4).

The collection is created by Holdfast's own store code with replication factor 3, async
replication and QUORUM writes and reads; a real corpus goes in through the ingestion pipeline
with the packaged embedding model. Then eight threads search through ``WeaviateStore.search``
for ``HOLDFAST_CLUSTER_LOAD_S`` seconds (default 60); about ten seconds in, node 0 is SIGKILLed.
Half the threads use a store whose client talks to node 0 (it fails over to another node: each
such switch repeats the read once, counted and bounded), half a store entering at node 2 (for
it the dead node is one replica of three); until the writes below, every search must rank
exactly as before the kill. Fifteen seconds after the kill, with node 0 still down, a document
is ingested and another deleted, at QUORUM. Node 0 is restarted on the same data; the test
measures how long it takes until node 0 itself holds the new chunks and has dropped the deleted
ones (async replication, asked of node 0 alone with ``node_name``), and until every node
reports the same object count per shard.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from weaviate.classes.query import Filter

from gateway.cli.main import SAMPLE_CORPUS
from gateway.components import Components
from gateway.container import build_components, build_store
from gateway.models.config import ensure_models_file
from gateway.offline import enforce_offline_env
from gateway.security.secrets import id_key
from gateway.settings import Settings
from ingestion.identity import Identity
from ingestion.pipeline import ChunkingPolicy, IngestReport, ingest_files
from services.weaviate_store import WeaviateStore
from tests.integration.conftest import CORPUS, PORT_BASE
from tests.integration.weaviate_cluster import API_KEY, WeaviateCluster, running_weaviate_cluster

pytestmark = pytest.mark.integration

BASE = PORT_BASE + 70  # three nodes, six ports each: +70 .. +87
REPO = Path(__file__).resolve().parents[2]
LOAD_S = float(os.environ.get("HOLDFAST_CLUSTER_LOAD_S", "60"))
KILL_AFTER_S = 10.0
WRITES_AFTER_KILL_S = 15.0
CONCURRENCY = 8
# how long node 0 may take, once ready again, to hold every write it missed (async replication)
CATCH_UP_BOUND_S = 90.0
# (question, the source whose chunk must rank first): the sample handbook
QUERIES = [
    ("How many days of paid annual leave do full-time employees get?", "leave-policy.md"),
    ("Which class may flights under six hours be booked in?", "expenses.md"),
    ("How many characters must a password have?", "it-security.md"),
    ("What happens to carried over leave days not taken by 31 March?", "leave-policy.md"),
    ("Is multi-factor authentication required for the VPN?", "it-security.md"),
    ("Who books flights and hotels for business travel?", "expenses.md"),
]


@dataclass
class LoadResult:
    searches: int = 0
    failures: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    by_store: Counter[str] = field(default_factory=Counter)
    # (began, ended: seconds into the load; question) of searches ranked unlike before the kill
    reordered: list[tuple[float, float, str]] = field(default_factory=list)


def _settings(home: Path, cluster: WeaviateCluster, entry: int) -> Settings:
    return Settings(
        home=home,
        weaviate=cluster.settings_overrides(entry=entry, replication_factor=3),
        ollama={"managed": False, "port": BASE + 28},
        redaction={"enabled": False},
    )


def _ingest(components: Components, paths: list[Path], group: str) -> IngestReport:
    settings = components.settings
    report = ingest_files(
        paths,
        groups=[group],
        store=components.store,
        embedder=components.embedder,
        redactor=None,
        policy=ChunkingPolicy(settings.chunking.max_tokens, settings.chunking.overlap_tokens),
        identity=Identity(id_key(settings)),
    )
    assert report.indexed == len(paths), [(f.source, f.reason) for f in report.files if not f.ok]
    return report


def _uuids(store: WeaviateStore, doc_ids: list[str]) -> set[str]:
    """Object ids of every chunk of ``doc_ids``, read at ALL from the live nodes' agreement."""
    target = store.alias_target()
    assert target is not None
    handle = store._client.reading(target)
    found = handle.query.fetch_objects(
        filters=Filter.by_property("doc_id").contains_any(doc_ids), limit=10_000
    )
    return {str(o.uuid) for o in found.objects}


def _held_by(cluster: WeaviateCluster, node: int, collection: str, uuid: str) -> bool:
    """Whether node ``node`` itself holds object ``uuid`` (no other replica is asked)."""
    member = cluster.node(node)
    response = httpx.head(
        f"{member.url}/v1/objects/{collection}/{uuid}",
        params={"node_name": member.name},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10.0,
    )
    assert response.status_code in (204, 404), response.text
    return response.status_code == 204


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeaviateCluster]:
    enforce_offline_env()
    with running_weaviate_cluster(BASE, tmp_path_factory.mktemp("wv-cluster"), nodes=3) as c:
        yield c


def test_searches_survive_a_killed_node_and_it_catches_up_on_return(
    cluster: WeaviateCluster, tmp_path: Path
) -> None:
    settings_a = _settings(tmp_path / "a", cluster, entry=0)
    settings_b = _settings(tmp_path / "b", cluster, entry=2)
    for settings in (settings_a, settings_b):
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        ensure_models_file(settings)
    components = build_components(settings_a)
    components.warm_up()  # creates the collection through the store: factor 3, async on
    store_a = components.store
    assert isinstance(store_a, WeaviateStore)
    store_b = build_store(settings_b)
    store_b.warm_up()
    store_b.ensure_schema(
        embedding_model=str(components.embedder_model_id),
        dimensions=components.embedder.dimensions,
    )
    try:
        target = store_a.alias_target()
        assert target is not None
        config = store_a._client.live.collections.use(target).config.get()
        assert config.replication_config.factor == 3
        assert config.replication_config.async_enabled is True
        assert config.replication_config.deletion_strategy.value == "TimeBasedResolution"

        docs = tmp_path / "docs"
        docs.mkdir()
        for path in (REPO / "helm" / "holdfast" / "README.md",):
            shutil.copy(path, docs / f"{path.parent.name}-{path.name}")
        corpus = [*sorted(SAMPLE_CORPUS.glob("*.md")), *sorted(docs.glob("*.md"))]
        started = time.monotonic()
        first = _ingest(components, corpus, "handbook")
        doomed = _ingest(components, [CORPUS / "cafeteria-injected.md"], "cafeteria")
        ingest_s = time.monotonic() - started
        doomed_uuids = _uuids(store_a, [f.doc_id for f in doomed.files])
        assert len(doomed_uuids) == doomed.chunks > 0
        before = store_a.count()
        assert before == first.chunks + doomed.chunks and first.chunks > 40

        vectors = {q: components.embedder.embed_query(q) for q, _ in QUERIES}
        expected: dict[str, list[str]] = {}
        for question, source in QUERIES:
            hits = store_a.search(
                groups=["handbook"], query=question, vector=vectors[question], limit=8, alpha=0.75
            )
            assert hits and Path(hits[0].chunk.source).name == source, (question, hits[:1])
            expected[question] = [h.chunk.chunk_id for h in hits]

        result = LoadResult()
        lock = threading.Lock()
        stop = threading.Event()
        t0 = time.monotonic()

        def worker(n: int) -> None:
            store, name = (store_a, "entry node0") if n % 2 == 0 else (store_b, "entry node2")
            i = n
            while not stop.is_set():
                question, source = QUERIES[i % len(QUERIES)]
                i += 1
                began = time.monotonic()
                try:
                    hits = store.search(
                        groups=["handbook"],
                        query=question,
                        vector=vectors[question],
                        limit=8,
                        alpha=0.75,
                    )
                except Exception as exc:  # every failure is counted, none hidden
                    with lock:
                        result.failures.append(f"{time.monotonic() - t0:.1f}s {name}: {exc!r}")
                    continue
                took = time.monotonic() - began
                with lock:
                    result.searches += 1
                    result.latencies.append(took)
                    result.by_store[name] += 1
                    if not hits or Path(hits[0].chunk.source).name != source:
                        result.wrong.append(f"{question}: {hits[:1]}")
                    elif [h.chunk.chunk_id for h in hits] != expected[question]:
                        result.reordered.append((began - t0, began + took - t0, question))

        outage: dict[str, object] = {}
        moments: dict[str, float] = {}  # seconds into the load

        def chaos() -> None:
            time.sleep(KILL_AFTER_S)
            cluster.node(0).kill()
            outage["killed_at"] = time.monotonic() - t0
            time.sleep(WRITES_AFTER_KILL_S)  # searches through the failover alone, checked exactly
            # writes while node 0 is down, at QUORUM (2 of 3 replicas answer)
            written = time.monotonic()
            moments["writes_began"] = written - t0
            outage["added"] = _ingest(components, [CORPUS / "finance-restricted.md"], "finance")
            outage["deleted"] = store_b.delete_documents([f.doc_id for f in doomed.files])
            outage["writes_s"] = time.monotonic() - written

        with ThreadPoolExecutor(CONCURRENCY + 1) as pool:
            running = [pool.submit(worker, n) for n in range(CONCURRENCY)]
            killer = pool.submit(chaos)
            time.sleep(LOAD_S)
            stop.set()
            for future in [*running, killer]:
                future.result()

        # The writes change the collection's BM25 statistics (document counts, term lengths,
        # and deleted objects until compaction), so ranks below the first may legitimately move
        # once they begin (a CI run saw one question's list move for the rest of the load).
        # Until then, through the kill and the failover, a search must rank exactly as before
        # the kill; from then on the top hit is still held fixed.
        writes_began = moments["writes_began"]
        misranked = [
            f"{began:.1f}s {question}"
            for began, ended, question in result.reordered
            if ended < writes_began
        ]
        moved = len(result.reordered) - len(misranked)
        switches, repeats = store_a.failovers
        latencies = sorted(result.latencies)
        print(
            f"\ncluster load: {result.searches} searches in {LOAD_S:.0f}s at concurrency "
            f"{CONCURRENCY} ({dict(result.by_store)}), node0 killed at "
            f"{outage['killed_at']:.1f}s; failed {len(result.failures)}, wrong "
            f"{len(result.wrong)}; failovers {switches} (reads repeated {repeats}); searches "
            f"repeated after re-reading the route {store_a.search_repeats + store_b.search_repeats}"
            f"; p50 "
            f"{latencies[len(latencies) // 2] * 1000:.0f} ms, p99 "
            f"{latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms, max {latencies[-1]:.2f}s; "
            f"writes during the outage {outage['writes_s']:.1f}s; first ingest {ingest_s:.1f}s; "
            f"ranked otherwise than before the kill: {len(misranked)} before the writes, "
            f"{moved} after them"
        )
        assert result.failures == [], result.failures[:5]
        assert result.wrong == [], result.wrong[:5]
        assert misranked == [], (len(misranked), misranked[:5])
        assert result.by_store["entry node0"] > 0 and result.by_store["entry node2"] > 0
        # the store entering at node 0 switched away from it (twice when the next node was not
        # ready yet: a node reports itself unready while the cluster elects a new leader), and
        # repeated at most one read per search thread that was inside a call when node 0 died
        assert 1 <= switches <= 2 and repeats <= CONCURRENCY
        # node 2 stayed up, but it may report itself unready for a moment while the cluster
        # elects a new leader (a CI run saw its store move once, with every search answered):
        # at most that one switch, and reads repeated only for the calls it cut short
        switches_b, repeats_b = store_b.failovers
        assert switches_b <= 1 and repeats_b <= CONCURRENCY * switches_b, store_b.failovers

        added = outage["added"]
        assert isinstance(added, IngestReport)
        deleted_ids = _uuids(store_b, [f.doc_id for f in doomed.files])
        assert deleted_ids == set(), "the deleted document is gone from the live nodes"
        added_uuids = _uuids(store_b, [f.doc_id for f in added.files])
        assert len(added_uuids) == added.chunks
        # node 0 still holds the deleted chunks and lacks the new ones: it was down for both
        expected_total = before - doomed.chunks + added.chunks
        everything = {store_b.object_id(cid) for cid, _, _ in store_b.chunk_texts()}
        assert len(everything) == store_b.count() == expected_total
        assert added_uuids <= everything and not doomed_uuids & everything
        restarted = time.monotonic()
        cluster.node(0).start()
        cluster.wait_members(3)
        ready_s = time.monotonic() - restarted
        # A search runs on one replica of each shard; QUORUM checks the objects it returns
        # with a second replica, but cannot add ones that replica lacks: until node 0 has caught
        # up, a filtered read it serves may miss a write it was down for. Measured, bounded.
        settings_c = _settings(tmp_path / "c", cluster, entry=0)
        store_c = build_store(settings_c)
        stale_reads, consistent_s = 0, None
        try:
            while time.monotonic() - restarted < ready_s + CATCH_UP_BOUND_S:
                listed = all(store_c.document(f.doc_id) for f in added.files)
                gone = not any(store_c.document(f.doc_id) for f in doomed.files)
                if listed and gone:
                    consistent_s = time.monotonic() - restarted
                    break
                stale_reads += 1
                time.sleep(0.1)
        finally:
            store_c.close()
        assert consistent_s is not None, "reads through node 0 never saw the missed writes"
        caught_up_s = None
        while time.monotonic() - restarted < ready_s + CATCH_UP_BOUND_S:
            has_new = all(_held_by(cluster, 0, target, u) for u in added_uuids)
            dropped = not any(_held_by(cluster, 0, target, u) for u in doomed_uuids)
            if has_new and dropped:
                caught_up_s = time.monotonic() - restarted
                break
            time.sleep(0.5)
        assert caught_up_s is not None, (
            f"node 0 did not catch up within {CATCH_UP_BOUND_S:.0f}s of being ready"
        )
        # each node's own copy, object by object: every chunk there, no deleted one left
        held = [
            sum(_held_by(cluster, i, target, u) for u in everything | doomed_uuids)
            for i in range(3)
        ]
        reported = [cluster.node(i).shard_counts(target) for i in range(3)]
        print(
            f"node0 back: ready after {ready_s:.1f}s, holds every write it missed after "
            f"{caught_up_s:.1f}s; objects held per node {held} of {expected_total}; "
            f"/v1/nodes shard counts {reported}"
        )
        print(
            f"reads coordinated by node 0 after its restart: {stale_reads} stale, consistent "
            f"after {consistent_s:.1f}s"
        )
        assert held == [expected_total] * 3
        assert store_a.count() == store_b.count() == expected_total
    finally:
        store_b.close()
        components.close()
