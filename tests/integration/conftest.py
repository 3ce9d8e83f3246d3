"""One real stack per test session, started by the same code as `holdfast up`: real Weaviate,
real Ollama serving the packaged Gemma model, the packaged MiniLM embedder and real Presidio.

Ports differ from the defaults so a developer's own stack can keep running beside the tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.cli.main import SAMPLE_CORPUS
from gateway.components import Components
from gateway.container import build_components
from gateway.local import stack
from gateway.offline import enforce_offline_env
from gateway.security.keys import KeyStore
from gateway.security.secrets import id_key
from gateway.settings import Settings
from ingestion.identity import Identity
from ingestion.pipeline import ChunkingPolicy, IngestReport, ingest_files

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
# Every test stack's ports are offsets from this base; parallel checkouts pick different bases.
PORT_BASE = int(os.environ.get("HOLDFAST_TEST_PORT_BASE", "28100"))


def stack_settings(home: Path, base_port: int, **overrides: object) -> Settings:
    """Settings for a test stack whose every port is ``base_port`` plus a fixed offset."""
    return Settings(
        home=home,
        weaviate={
            "http_port": base_port,
            "grpc_port": base_port + 1,
            "gossip_port": base_port + 2,
            "data_port": base_port + 3,
            "raft_port": base_port + 4,
            "raft_rpc_port": base_port + 5,
        },
        ollama={"port": base_port + 6, **overrides.pop("ollama", {})},  # type: ignore[dict-item]
        gateway={"port": base_port + 7},
        **overrides,  # type: ignore[arg-type]
    )


@dataclass
class LiveStack:
    settings: Settings
    components: Components
    handbook_key: str
    finance_key: str
    admin_key: str
    report: IngestReport

    @property
    def url(self) -> str:
        return self.settings.gateway.base_url

    def post(self, path: str, body: dict[str, object], key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=300.0)


@pytest.fixture(scope="session")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    enforce_offline_env()
    settings = stack_settings(tmp_path_factory.mktemp("holdfast-home"), base_port=PORT_BASE)
    try:
        result = stack.up(settings)
        assert result.admin_key, "a first start must mint an admin key"
        components = build_components(settings)
        components.warm_up()
        report = ingest_files(
            sorted(SAMPLE_CORPUS.glob("*.md")),
            groups=["handbook"],
            store=components.store,
            embedder=components.embedder,
            redactor=components.redactor,
            policy=ChunkingPolicy(settings.chunking.max_tokens, settings.chunking.overlap_tokens),
            identity=Identity(id_key(settings)),
        )
        ingest_files(
            [CORPUS / "finance-restricted.md"],
            groups=["finance"],
            store=components.store,
            embedder=components.embedder,
            redactor=components.redactor,
            policy=ChunkingPolicy(settings.chunking.max_tokens, settings.chunking.overlap_tokens),
            identity=Identity(id_key(settings)),
        )
        keys = KeyStore(settings.keys_db)
        _, handbook_key = keys.create("tester", groups=["handbook"], roles=["query"])
        _, finance_key = keys.create("cfo", groups=["finance"], roles=["query"])
        yield LiveStack(settings, components, handbook_key, finance_key, result.admin_key, report)
    finally:
        stack.down(settings)
