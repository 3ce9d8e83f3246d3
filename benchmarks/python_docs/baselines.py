"""Baselines computed outside the product, over the same pages: BM25, dense, and their fusion.

Every page is cut into overlapping plain-text word windows (``corpus.windows``). A page's score
in an arm is the score of its best window.
- ``bm25``: bm25s (Lucene BM25, k1 1.5, b 0.75) over the windows, English stop words and the
  Snowball English stemmer (PyStemmer).
- ``dense``: all-MiniLM-L6-v2, its fp32 ONNX export from the models dir (the one
  ``local/all-MiniLM-L6-v2`` runs; same vectors as sentence-transformers, no torch), cosine
  similarity of normalised embeddings. Window embeddings are cached per page under the
  cache dir, keyed by docs version, model and window size, so a rerun embeds nothing.
- ``hybrid-baseline``: reciprocal-rank fusion (k = 60) of the two page rankings.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.python_docs.corpus import Page, Window, windows

if TYPE_CHECKING:
    from services.onnx_embedder import OnnxEmbedder

RRF_K = 60
DEPTH = 20  # pages kept per ranking; the metrics read the top 10
WINDOW_DEPTH = 400  # windows read per query before pages are taken from them
MODEL_ID = "all-MiniLM-L6-v2"  # in the cache key: the ONNX export gives the same vectors
ONNX_MODEL = "all-minilm-l6-v2"
ENCODE_BATCH = 64


@dataclass(frozen=True)
class Ranked:
    pages: list[str]
    top_score: float  # the best page's score, for answerability separation


def pages_from_windows(
    window_ids: Sequence[int], scores: Sequence[float], owners: Sequence[str], depth: int = DEPTH
) -> Ranked:
    """Window hits (best first) to pages, each at its best window."""
    pages: dict[str, float] = {}
    for wid, score in zip(window_ids, scores, strict=True):
        page = owners[wid]
        if page not in pages:
            pages[page] = float(score)
            if len(pages) == depth:
                break
    ranking = list(pages)
    return Ranked(ranking, pages[ranking[0]] if ranking else 0.0)


def rrf(rankings: Sequence[Sequence[str]], k: int = RRF_K, depth: int = DEPTH) -> Ranked:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, page in enumerate(ranking, start=1):
            scores[page] = scores.get(page, 0.0) + 1.0 / (k + rank)
    ordered = sorted(scores, key=lambda p: (-scores[p], p))[:depth]
    return Ranked(ordered, scores[ordered[0]] if ordered else 0.0)


class WindowIndex:
    """The windows of a page set, with a BM25 index and (on demand) their dense embeddings."""

    def __init__(self, pages: Sequence[Page], size: int = 200, overlap: int = 50) -> None:
        self.size, self.overlap = size, overlap
        self.windows: list[Window] = [w for p in pages for w in windows(p, size, overlap)]
        self.owners = [w.page_id for w in self.windows]
        self.page_ids = [p.page_id for p in pages]
        self._bm25: Any = None
        self._stemmer: Any = None
        self.embeddings: np.ndarray | None = None
        self._model: OnnxEmbedder | None = None

    # -------------------------------------------------------------- BM25
    def build_bm25(self) -> None:
        import bm25s
        import Stemmer

        self._stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(
            [w.text for w in self.windows],
            stopwords="en",
            stemmer=self._stemmer,
            show_progress=False,
        )
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        self._bm25 = retriever

    def bm25(self, query: str) -> Ranked:
        import bm25s

        if self._bm25 is None:
            self.build_bm25()
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.vocab:  # only stop words: nothing can match
            return Ranked([], 0.0)
        k = min(WINDOW_DEPTH, len(self.windows))
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False)
        keep = [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
        return pages_from_windows([d for d, _ in keep], [s for _, s in keep], self.owners)

    # -------------------------------------------------------------- dense
    def model(self) -> OnnxEmbedder:
        if self._model is None:
            from services.onnx_embedder import onnx_embedder, resolve_models_dir

            model = onnx_embedder(
                ONNX_MODEL, resolve_models_dir(os.environ), batch_size=ENCODE_BATCH
            )
            model.warm_up()  # a missing model says so in one line (run scripts/install-models.sh)
            self._model = model
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, float32, one row per text (MiniLM has no query or passage prefix)."""
        return np.asarray(self.model().embed_documents(list(texts)), dtype=np.float32)

    def cache_key(self, docs_version: str) -> str:
        params = f"{docs_version}|{MODEL_ID}|w{self.size}o{self.overlap}"
        return hashlib.sha256(params.encode()).hexdigest()[:16]

    def embed(
        self,
        cache: Path,
        docs_version: str,
        on_progress: Callable[[int, int], None] | None = None,
        batch: int = ENCODE_BATCH,
    ) -> dict[str, float]:
        """Embed every window, reading and filling the per-page cache (``batch`` sets how many
        windows go together between saves: four batches' worth). Returns timing figures."""
        folder = cache / "embeddings" / self.cache_key(docs_version)
        folder.mkdir(parents=True, exist_ok=True)
        by_page: dict[str, list[int]] = {}
        for i, owner in enumerate(self.owners):
            by_page.setdefault(owner, []).append(i)
        vectors: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for page, rows in by_page.items():
            path = folder / (page.replace("/", "__") + ".npy")
            if path.exists():
                arr = np.load(path)
                if arr.shape[0] == len(rows):
                    vectors[page] = arr
                    continue
            missing.append(page)
        todo = sum(len(by_page[p]) for p in missing)
        seconds, done = 0.0, 0
        if todo:
            self.model()  # loaded before the clock starts
            # Embed a few pages at a time and save each page at once: an interrupted run keeps
            # what it embedded, and the next run embeds only the rest.
            group: list[str] = []
            for n, page in enumerate(missing, start=1):
                group.append(page)
                rows = [i for p in group for i in by_page[p]]
                if len(rows) < batch * 4 and n < len(missing):
                    continue
                started = time.perf_counter()
                fresh = self.encode([self.windows[i].text for i in rows])
                seconds += time.perf_counter() - started
                offset = 0
                for p in group:
                    k = len(by_page[p])
                    vectors[p] = fresh[offset : offset + k]
                    np.save(folder / (p.replace("/", "__") + ".npy"), vectors[p])
                    offset += k
                done += len(rows)
                group = []
                if on_progress:
                    on_progress(done, todo)
        elif on_progress:
            on_progress(len(self.windows), len(self.windows))
        matrix = np.zeros((len(self.windows), 384), dtype=np.float32)
        for page, rows in by_page.items():
            matrix[rows] = vectors[page]
        self.embeddings = matrix
        return {
            "windows_embedded": float(todo),
            "embed_seconds": seconds,
            "windows_per_s": todo / seconds if seconds else 0.0,
        }

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        return self.encode(queries)

    def dense(self, query_vector: np.ndarray) -> Ranked:
        assert self.embeddings is not None, "embed() first"
        sims = self.embeddings @ query_vector
        k = min(WINDOW_DEPTH, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        return pages_from_windows([int(i) for i in top], [float(sims[i]) for i in top], self.owners)


def raw_embedding_rate(index: WindowIndex, sample: int = 256) -> float:
    """Windows per second of the dense model on a fixed sample, timed now (a reference figure
    for the product's ingestion throughput measured on the same machine at about the same time)."""
    texts = [w.text for w in index.windows[:sample]]
    index.encode(texts[:8])  # warm-up
    started = time.perf_counter()
    index.encode(texts)
    return len(texts) / (time.perf_counter() - started)
