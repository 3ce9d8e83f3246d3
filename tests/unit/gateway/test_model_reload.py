"""A models.yaml reload builds, warms and probes the next set through the registry's builder (no
adapter is named by the reload code), and refuses an embedding-model change the index does not
record. Deterministic fake models; no services."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.models.audit import ModelAudit
from gateway.models.config import ModelEntry, ModelsConfig, load_models
from gateway.models.registry import ModelRegistry, ModelSet, config_digest
from gateway.models.reload import prepare, reload_models
from gateway.settings import Settings, load_settings
from services.errors import InvalidConfigFileError
from services.records import ChatMessage, Completion, HealthStatus, IndexRecord, RerankScore

pytestmark = pytest.mark.unit

LIMITS = {"timeout": 5, "max_retries": 0}
BASE = "http://127.0.0.1:1"


class FakeRouter:
    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    def warm_up(self) -> None: ...

    def complete(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        use_fallbacks: bool = True,
    ) -> Completion:
        self.asked.append((alias, use_fallbacks))
        return Completion(text="pong", model="fake")

    def stream(
        self, alias: str, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]:
        yield "pong"

    def health(self, alias: str) -> HealthStatus:
        return HealthStatus("llm", True)


class FakeEmbedder:
    def __init__(self, name: str, dimensions: int) -> None:
        self.name, self._dimensions = name, dimensions
        self.queries: list[str] = []

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return [1.0] * self._dimensions

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def health(self) -> HealthStatus:
        return HealthStatus("embedder", True)


class FakeReranker:
    def rerank(self, query: str, texts: Sequence[str]) -> list[RerankScore]:
        return [RerankScore(i, 1.0) for i in range(len(texts))]

    def health(self) -> HealthStatus:
        return HealthStatus("reranker", True)


class FakeBuilder:
    """Records what the reload asked of it; embedders get their dimension from ``dims``."""

    def __init__(self, settings: Settings, dims: dict[str, int] | None = None) -> None:
        self.settings = settings
        self.dims = dims or {}
        self.built: list[int] = []
        self.warmed: list[int] = []
        self.extra_embedders: list[str] = []

    def _embedder(self, entry: ModelEntry) -> FakeEmbedder:
        return FakeEmbedder(entry.model, self.dims.get(entry.model, 4))

    def build(self, config: ModelsConfig, *, previous: ModelSet | None = None) -> ModelSet:
        entry = config.entry(self.settings.generation.embedding_alias)
        version = previous.version + 1 if previous else 1
        self.built.append(version)
        return ModelSet(
            config=config,
            router=FakeRouter(),
            embedder=self._embedder(entry),
            reranker=None,
            version=version,
            digest=config_digest(config),
        )

    def embedder_for(self, entry: ModelEntry) -> FakeEmbedder:
        self.extra_embedders.append(entry.model_name)
        return self._embedder(entry)

    def reranker_for(self, entry: ModelEntry) -> FakeReranker:
        return FakeReranker()

    def warm_up(self, models: ModelSet) -> None:
        self.warmed.append(models.version)


class FakeStore:
    """The two store calls a reload makes: the live collection's record, and the schema."""

    def __init__(self, live: IndexRecord | None) -> None:
        self.live = live
        self.schemas: list[tuple[str, int]] = []

    def live_record(self) -> IndexRecord | None:
        return self.live

    def ensure_schema(self, *, embedding_model: str = "", dimensions: int = 0) -> None:
        self.schemas.append((embedding_model, dimensions))


def _config(embed_model: str = "local/a", *, second_embedder: bool = False) -> ModelsConfig:
    entries: list[dict[str, Any]] = [
        {
            "model_name": "chat-default",
            "litellm_params": {"model": "ollama_chat/m", "api_base": BASE, **LIMITS},
        },
        {
            "model_name": "embed-default",
            "litellm_params": {"model": embed_model, "model_path": f"/m/{embed_model}", **LIMITS},
            "model_info": {"mode": "embedding"},
        },
    ]
    if second_embedder:
        entries.append(
            {
                "model_name": "embed-other",
                "litellm_params": {"model": "local/b", "model_path": "/m/b", **LIMITS},
                "model_info": {"mode": "embedding"},
            }
        )
    return ModelsConfig.model_validate({"model_list": entries})


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("HOLDFAST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOLDFAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOLDFAST_CONFIG", str(tmp_path / "absent.yaml"))
    return load_settings(models_file=tmp_path / "models.yaml")


def test_prepare_builds_warms_and_probes_through_the_builder(settings: Settings) -> None:
    builder = FakeBuilder(settings)
    candidate, changes, probed = prepare(
        settings, _config(second_embedder=True), None, builder=builder
    )
    assert builder.built == [1] and builder.warmed == [1]
    assert set(changes) == {"chat-default", "embed-default", "embed-other"}
    assert sorted(probed) == ["chat-default", "embed-default", "embed-other"]
    assert isinstance(candidate.router, FakeRouter)
    assert candidate.router.asked == [("chat-default", False)]  # a probe never falls back
    assert isinstance(candidate.embedder, FakeEmbedder) and candidate.embedder.queries == ["ping"]
    assert builder.extra_embedders == ["embed-other"]  # only the alias outside the set


def test_an_embedding_model_change_needs_an_index_built_with_it(settings: Settings) -> None:
    builder = FakeBuilder(settings, dims={"local/new": 8})
    current = builder.build(_config("local/a"))
    with pytest.raises(InvalidConfigFileError, match="holdfast reindex"):
        prepare(settings, _config("local/new"), current, builder=builder)
    stale = FakeStore(IndexRecord("Chunks_1", "local/a", 4, 2))
    with pytest.raises(InvalidConfigFileError, match="holdfast reindex"):
        prepare(settings, _config("local/new"), current, builder=builder, store=stale)
    wrong_dims = FakeStore(IndexRecord("Chunks_2", "local/new", 16, 2))
    with pytest.raises(InvalidConfigFileError, match="16-dim"):
        prepare(settings, _config("local/new"), current, builder=builder, store=wrong_dims)
    reindexed = FakeStore(IndexRecord("Chunks_2", "local/new", 8, 2))
    candidate, changes, _ = prepare(
        settings, _config("local/new"), current, builder=builder, store=reindexed
    )
    assert candidate.embedder.dimensions == 8 and changes == {"embed-default": "changed"}


def test_reload_swaps_through_the_registrys_builder_and_follows_the_index(
    settings: Settings, tmp_path: Path
) -> None:
    builder = FakeBuilder(settings, dims={"local/new": 8})
    path = settings.models_path
    path.write_text(yaml.safe_dump(_config("local/a").model_dump(mode="json")), encoding="utf-8")
    registry = ModelRegistry(builder.build(load_models(path)), builder)
    audit = ModelAudit(tmp_path / "audit.db")
    store = FakeStore(IndexRecord("Chunks_2", "local/new", 8, 2))
    same = reload_models(settings, registry, audit, actor="t", trigger="api", store=store)
    assert not same.swapped and registry.current().version == 1

    path.write_text(yaml.safe_dump(_config("local/new").model_dump(mode="json")), encoding="utf-8")
    result = reload_models(settings, registry, audit, actor="t", trigger="api", store=store)
    assert result.swapped and result.version == 2 and registry.current().version == 2
    assert builder.warmed == [2]
    assert store.schemas == [("local/new", 8)]  # reads and writes follow the alias again
    assert [c.outcome for c in audit.recent()] == ["swapped"]


def test_a_rejected_reload_keeps_the_running_set_and_is_audited(
    settings: Settings, tmp_path: Path
) -> None:
    builder = FakeBuilder(settings)
    registry = ModelRegistry(builder.build(_config("local/a")), builder)
    audit = ModelAudit(tmp_path / "audit.db")
    settings.models_path.write_text(
        yaml.safe_dump(_config("local/other").model_dump(mode="json")), encoding="utf-8"
    )
    with pytest.raises(InvalidConfigFileError):
        reload_models(settings, registry, audit, actor="t", trigger="watch")
    assert registry.current().version == 1 and builder.warmed == []
    assert [c.outcome for c in audit.recent()] == ["rejected"]
