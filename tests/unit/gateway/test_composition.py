"""The composition root: settings reach the store adapter as constructor values, the app is wired
by ``gateway.main`` (``create_app`` itself names no adapter), and nothing opens a connection
before the lifespan starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.container import build_store
from gateway.main import create_default_app
from gateway.settings import Settings, load_settings
from services.weaviate_common import WeaviateConnection

pytestmark = pytest.mark.unit


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    return load_settings(
        weaviate={
            "api_key": "wk",
            "http_port": 9,
            "grpc_port": 10,
            "query_timeout_s": 11.0,
            "insert_timeout_s": 12.0,
            "init_timeout_s": 13.0,
            "health_timeout_s": 0.5,
            "connect_wait_s": 14.0,
            "alias_cache_s": 7.0,
            "max_query_results": 500,
            "hit_vector_cache": 64,
        },
        retrieval={"section_fetch_limit": 33},
        ingestion={"max_duplicates_per_file": 9},
    )


def test_the_store_gets_every_weaviate_knob_from_settings(settings: Settings) -> None:
    store = build_store(settings)
    assert store._conn == WeaviateConnection(
        host="127.0.0.1",
        http_port=9,
        grpc_port=10,
        api_key="wk",
        collection="HoldfastChunk",
        query_timeout_s=11.0,
        insert_timeout_s=12.0,
        init_timeout_s=13.0,
        health_timeout_s=0.5,
        connect_wait_s=14.0,
    )
    assert (store._section_limit, store._twins_per_hash, store._max_results) == (33, 9, 500)
    assert store._versions._route_ttl_s == 7.0
    assert store._hit_vectors.capacity == 64


def test_the_new_store_settings_keep_the_former_values_by_default(tmp_path: Path) -> None:
    defaults = Settings(home=tmp_path)
    assert (defaults.weaviate.insert_timeout_s, defaults.weaviate.init_timeout_s) == (90.0, 5.0)
    assert defaults.weaviate.alias_cache_s == 2.0
    assert defaults.weaviate.max_query_results == 10_000
    assert defaults.retrieval.section_fetch_limit == 200
    assert defaults.ingestion.max_duplicates_per_file == 50


def test_the_app_needs_its_wiring_from_the_composition_root(settings: Settings) -> None:
    with pytest.raises(TypeError, match="wiring"):
        create_app(settings)  # type: ignore[call-arg]


def test_the_default_app_is_wired_without_opening_any_backend(settings: Settings) -> None:
    app = create_default_app(settings)  # the store, models and redactor open in the lifespan
    assert isinstance(app, FastAPI)
    paths = set(app.openapi()["paths"])
    assert {"/v1/query", "/v1/search", "/v1/documents", "/admin/reload", "/readyz"} <= paths
    assert not hasattr(app.state, "components")
