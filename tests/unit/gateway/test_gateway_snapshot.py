"""The settings snapshot `holdfast up` hands the gateway process holds no secret: a SecretStr
would be written as asterisks and then used as the value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.local.stack import gateway_spec
from gateway.main import _settings_from_environment
from gateway.settings import EFFECTIVE_SETTINGS_ENV, load_settings

pytestmark = pytest.mark.unit


def test_the_snapshot_leaves_secrets_to_env_and_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOLDFAST_INGESTION__ID_KEY", "an-id-key-from-the-environment")
    monkeypatch.setenv("HOLDFAST_WEAVIATE__API_KEY", "a-weaviate-key")
    settings = load_settings(home=tmp_path)
    spec = gateway_spec(settings)
    snapshot = Path(spec.env[EFFECTIVE_SETTINGS_ENV])
    text = snapshot.read_text()
    assert "**" not in text and "an-id-key" not in text and "a-weaviate-key" not in text
    assert "id_key" not in json.loads(text)["ingestion"]
    monkeypatch.setenv(EFFECTIVE_SETTINGS_ENV, str(snapshot))
    child = _settings_from_environment()
    assert child.ingestion.id_key is not None
    assert child.ingestion.id_key.get_secret_value() == "an-id-key-from-the-environment"
    assert child.weaviate.api_key is not None
    assert child.weaviate.api_key.get_secret_value() == "a-weaviate-key"
