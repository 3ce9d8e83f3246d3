"""Settings: defaults, YAML file, environment and constructor precedence, derived paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from gateway.settings import load_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("HOLDFAST_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("HOLDFAST_HOME", str(home))
    monkeypatch.setenv("HOLDFAST_CONFIG", str(tmp_path / "holdfast.yaml"))
    return home


@pytest.fixture
def config_file(tmp_path: Path, home: Path) -> Path:
    return tmp_path / "holdfast.yaml"


def write_yaml(path: Path, data: object) -> None:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")


def test_defaults_need_no_config_file(home: Path, config_file: Path) -> None:
    assert not config_file.exists()
    s = load_settings()
    assert s.home == home
    assert s.environment == "development"
    assert (s.weaviate.host, s.weaviate.http_port, s.weaviate.grpc_port) == (
        "127.0.0.1",
        8079,
        50051,
    )
    assert s.ollama.base_url == "http://127.0.0.1:11434"
    assert s.gateway.base_url == "http://127.0.0.1:8080"
    assert s.retrieval.top_k == 5
    assert s.redaction.enabled is True


def test_yaml_named_by_holdfast_config_is_read(config_file: Path) -> None:
    write_yaml(config_file, {"environment": "staging", "weaviate": {"http_port": 9001}})
    s = load_settings()
    assert s.environment == "staging"
    assert s.weaviate.http_port == 9001
    assert s.weaviate.grpc_port == 50051  # untouched nested defaults survive


def test_yaml_defaults_to_holdfast_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOLDFAST_CONFIG")
    home.mkdir()
    write_yaml(home / "holdfast.yaml", {"ollama": {"port": 12000}})
    assert load_settings().ollama.port == 12000


def test_env_overrides_yaml(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_yaml(config_file, {"weaviate": {"http_port": 9001, "grpc_port": 50999}})
    monkeypatch.setenv("HOLDFAST_WEAVIATE__HTTP_PORT", "9002")
    s = load_settings()
    assert s.weaviate.http_port == 9002
    assert s.weaviate.grpc_port == 50999


def test_init_kwargs_override_env(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOLDFAST_WEAVIATE__HTTP_PORT", "9002")
    monkeypatch.setenv("HOLDFAST_ENVIRONMENT", "staging")
    s = load_settings(weaviate={"http_port": 9003}, environment="production")
    assert s.weaviate.http_port == 9003
    assert s.environment == "production"


def test_unknown_top_level_key_in_yaml_is_rejected(config_file: Path) -> None:
    write_yaml(config_file, {"weaviat": {"http_port": 9001}})
    with pytest.raises(ValidationError, match="weaviat"):
        load_settings()


def test_unknown_nested_key_in_yaml_is_rejected(config_file: Path) -> None:
    write_yaml(config_file, {"weaviate": {"htp_port": 9001}})
    with pytest.raises(ValidationError, match="htp_port"):
        load_settings()


def test_out_of_range_value_is_rejected(config_file: Path) -> None:
    write_yaml(config_file, {"retrieval": {"top_k": 0}})
    with pytest.raises(ValidationError, match="top_k"):
        load_settings()


def test_state_paths_derive_from_home(home: Path) -> None:
    s = load_settings()
    assert s.keys_db == home / "state" / "holdfast.db"
    assert s.admin_key_file == home / "secrets" / "admin-api-key"
    assert s.weaviate_key_file == home / "secrets" / "weaviate-api-key"
    assert s.logs_dir == home / "logs"
    assert s.run_dir == home / "run"
    assert s.models_path == home / "models.yaml"


def test_explicit_models_file_wins_over_home(home: Path, tmp_path: Path) -> None:
    s = load_settings(models_file=tmp_path / "elsewhere" / "models.yaml")
    assert s.models_path == tmp_path / "elsewhere" / "models.yaml"


def test_home_from_init_kwarg_moves_every_derived_path(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    s = load_settings(home=other)
    assert s.keys_db == other / "state" / "holdfast.db"
    assert s.models_path == other / "models.yaml"


def test_tilde_in_holdfast_home_is_expanded(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HOLDFAST_HOME", "~/hf")
    assert load_settings().home == tmp_path / "hf"
