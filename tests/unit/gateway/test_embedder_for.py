"""Which adapter serves an in-process embedding entry (no model is loaded: constructors do no I/O).

``local/all-MiniLM-L6-v2`` (the id existing indexes record) runs the ONNX export of the same
model from the models dir; another ``local/`` entry names a sentence-transformers folder, which
needs the optional extra and says so in one line when it is missing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.container import embedder_for
from gateway.models.config import PACKAGED_EMBEDDER, PACKAGED_ONNX_MODEL, ModelEntry, ModelInfo
from services.errors import ConfigError, EmbedderUnavailableError
from services.local_embedder import LocalEmbedder
from services.onnx_embedder import OnnxEmbedder

pytestmark = pytest.mark.unit


def entry(model: str, **params: Any) -> ModelEntry:
    return ModelEntry(
        model_name="embed-default",
        litellm_params={"model": model, "timeout": 30, "max_retries": 0, **params},
        model_info=ModelInfo(mode="embedding"),
    )


def test_the_packaged_minilm_id_is_served_by_its_onnx_export_from_the_models_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOLDFAST_MODELS_DIR", str(tmp_path))
    embedder = embedder_for(entry(PACKAGED_EMBEDDER))
    assert PACKAGED_EMBEDDER == "local/all-MiniLM-L6-v2"  # indexes record this id: never rename
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.spec.name == PACKAGED_ONNX_MODEL == "all-minilm-l6-v2"
    assert embedder.spec.pooling == "mean" and embedder.spec.max_tokens == 256
    # not installed there: warm_up says where it looked and what installs it
    with pytest.raises(EmbedderUnavailableError, match=r"install-models\.sh") as failed:
        embedder.warm_up()
    assert str(tmp_path / "all-minilm-l6-v2") in str(failed.value)


def test_the_packaged_minilm_honours_models_dir_like_an_onnx_entry(tmp_path: Path) -> None:
    embedder = embedder_for(entry(PACKAGED_EMBEDDER, models_dir=str(tmp_path), batch_size=8))
    assert isinstance(embedder, OnnxEmbedder)
    with pytest.raises(EmbedderUnavailableError, match=str(tmp_path / "all-minilm-l6-v2")):
        embedder.warm_up()


def test_a_local_entry_with_model_path_is_a_sentence_transformers_folder(tmp_path: Path) -> None:
    for model in ("local/my-model", PACKAGED_EMBEDDER):
        assert isinstance(embedder_for(entry(model, model_path=str(tmp_path))), LocalEmbedder)


def test_another_local_entry_without_model_path_is_refused() -> None:
    with pytest.raises(ConfigError, match="set model_path"):
        embedder_for(entry("local/my-model"))


def test_without_sentence_transformers_a_local_folder_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    # the import fails whether or not the optional extra is installed
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    embedder = embedder_for(entry("local/my-model", model_path=str(tmp_path)))
    with pytest.raises(EmbedderUnavailableError) as failed:
        embedder.warm_up()
    reason = str(failed.value)
    assert "\n" not in reason
    assert "holdfast[sentence-transformers]" in reason and "onnx/" in reason
    assert str(tmp_path) in reason


def test_a_local_folder_without_a_model_says_so(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailableError, match="no embedding model at"):
        LocalEmbedder(tmp_path / "missing").warm_up()
