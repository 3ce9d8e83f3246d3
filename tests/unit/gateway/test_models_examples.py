"""The GPU ``models.yaml`` examples the README points to load as the gateway would load them:
every alias the gateway names is there, every entry bounded, every api_base inside the site."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.models.config import load_models

pytestmark = pytest.mark.unit

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples" / "models").glob("*.yaml"))


def test_there_are_gpu_examples() -> None:
    assert len(EXAMPLES) >= 2, EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_with_every_alias_bounded(path: Path) -> None:
    config = load_models(path)
    aliases = {e.model_name: e for e in config.model_list}
    assert {"chat-default", "embed-default"} <= set(aliases)
    assert aliases["chat-default"].model.startswith("hosted_vllm/")
    for entry in config.model_list:
        assert entry.litellm_params["timeout"] > 0 and "max_retries" in entry.litellm_params
        assert not entry.allow_external  # the air-gap guard accepted every api_base as internal
