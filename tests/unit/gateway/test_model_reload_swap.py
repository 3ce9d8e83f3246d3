"""The order of a models.yaml swap: the store learns the new embedding model before the registry
publishes the set that embeds with it, the change is audited, and only then are the replaced
set's adapters closed (those the new set does not reuse); a store that cannot follow keeps the
running set, expecting its model, and closes the candidate's new adapters. Fake models, no
services."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from gateway.models.audit import ModelAudit
from gateway.models.config import ModelsConfig, load_models
from gateway.models.registry import ModelRegistry, ModelSet
from gateway.models.reload import reload_models, retire
from gateway.settings import Settings, load_settings
from services.errors import StoreUnavailableError
from services.records import IndexRecord
from tests.unit.gateway.test_model_reload import (
    FakeBuilder,
    FakeEmbedder,
    FakeRouter,
    _config,
)

pytestmark = pytest.mark.unit

EVENTS: list[str] = []


class ClosingEmbedder(FakeEmbedder):
    def close(self) -> None:
        EVENTS.append(f"close {self.name}")


class ClosingRouter(FakeRouter):
    def __init__(self, version: int) -> None:
        super().__init__()
        self.version = version

    def close(self) -> None:
        EVENTS.append(f"close router {self.version}")


class ClosingBuilder(FakeBuilder):
    """Reuses the previous embedder when its entry is unchanged, as the real builder does."""

    def _embedder(self, entry):  # type: ignore[no-untyped-def]
        return ClosingEmbedder(entry.model, self.dims.get(entry.model, 4))

    def build(self, config: ModelsConfig, *, previous: ModelSet | None = None) -> ModelSet:
        built = super().build(config, previous=previous)
        alias = self.settings.generation.embedding_alias
        same = previous is not None and previous.config.entry(alias) == config.entry(alias)
        embedder = previous.embedder if same and previous is not None else built.embedder
        return ModelSet(
            config=config,
            router=ClosingRouter(built.version),
            embedder=embedder,
            reranker=None,
            version=built.version,
            digest=built.digest,
        )


class WatchingStore:
    """Records which set the registry published when the store learned a model."""

    def __init__(self, registry: list[ModelRegistry], live: IndexRecord, fail: bool = False):
        self.registry, self.live, self.fail = registry, live, fail
        self.expects: list[tuple[str, int]] = []

    def live_record(self) -> IndexRecord:
        return self.live

    def ensure_schema(self, *, embedding_model: str = "", dimensions: int = 0) -> None:
        self.expects.append((embedding_model, dimensions))
        EVENTS.append(
            f"store expects {embedding_model} with version "
            f"{self.registry[0].current().version} published"
        )
        if self.fail and embedding_model == "local/new":
            raise StoreUnavailableError("weaviate is down")


class RecordingAudit(ModelAudit):
    def record(self, **kwargs):  # type: ignore[no-untyped-def, override]
        EVENTS.append(f"audit {kwargs['outcome']}")
        return super().record(**kwargs)


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return load_settings(models_file=isolated_env / "models.yaml")


def _write(settings: Settings, config: ModelsConfig) -> None:
    settings.models_path.write_text(
        yaml.safe_dump(config.model_dump(mode="json")), encoding="utf-8"
    )


def _start(settings: Settings, tmp_path: Path, *, fail: bool = False):  # type: ignore[no-untyped-def]
    EVENTS.clear()
    builder = ClosingBuilder(settings, dims={"local/new": 8})
    _write(settings, _config("local/a"))
    registry = ModelRegistry(builder.build(load_models(settings.models_path)), builder)
    store = WatchingStore([registry], IndexRecord("Chunks_2", "local/new", 8, 2), fail=fail)
    return registry, store, RecordingAudit(tmp_path / "audit.db")


def test_the_store_follows_before_the_set_is_published_and_the_old_set_closes_last(
    settings: Settings,
    tmp_path: Path,
) -> None:
    registry, store, audit = _start(settings, tmp_path)
    _write(settings, _config("local/new"))
    result = reload_models(
        settings, registry, audit, actor="t", trigger="api", store=store, retire_after_s=0
    )
    assert result.swapped and registry.current().version == 2
    assert EVENTS == [
        "store expects local/new with version 1 published",  # not yet the new set
        "audit swapped",
        "close router 1",
        "close local/a",
    ]


def test_an_adapter_the_new_set_reuses_stays_open(
    settings: Settings,
    tmp_path: Path,
) -> None:
    registry, store, audit = _start(settings, tmp_path)
    first = registry.current()
    _write(settings, _config("local/a", second_embedder=True))  # the embedder entry is unchanged
    reload_models(
        settings, registry, audit, actor="t", trigger="api", store=store, retire_after_s=0
    )
    assert registry.current().embedder is first.embedder
    assert store.expects == []  # the embedding model did not change: the store is not touched
    assert "close local/a" not in EVENTS and "close router 1" in EVENTS
    assert "close local/b" in EVENTS  # the adapter built only to probe embed-other


def test_a_store_that_cannot_follow_keeps_the_running_set_and_its_model(
    settings: Settings,
    tmp_path: Path,
) -> None:
    registry, store, audit = _start(settings, tmp_path, fail=True)
    _write(settings, _config("local/new"))
    with pytest.raises(StoreUnavailableError):
        reload_models(settings, registry, audit, actor="t", trigger="api", store=store)
    assert registry.current().version == 1
    assert store.expects == [("local/new", 8), ("local/a", 4)]  # told the running model again
    assert "close local/new" in EVENTS and "close local/a" not in EVENTS
    assert [c.outcome for c in audit.recent()] == ["rejected"]


def test_a_replaced_set_closes_only_after_the_grace_period(settings: Settings) -> None:
    EVENTS.clear()
    builder = ClosingBuilder(settings)
    old = builder.build(_config("local/a"))
    new = builder.build(_config("local/b"), previous=old)
    retire(old, keep=new, after_s=0.2)
    assert EVENTS == []  # requests that took the old set are still finishing on it
    time.sleep(0.5)
    assert sorted(EVENTS) == ["close local/a", "close router 1"]
