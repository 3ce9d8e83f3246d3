"""The chart's shared rate-limit store (issue 18 item 3): `gateway.rateLimitStore` passes
HOLDFAST_LIMITS__STORAGE_URL to the gateway pods from an existing Secret; with more than one
gateway pod and no store, production refuses to render and any other environment warns in NOTES
(each pod would count on its own: N pods allow N times the limit)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.unit.test_helm_chart import (
    CHART,
    FULLNAME,
    containers,
    env_of,
    find,
    helm,
    render,
    render_failure,
)

pytestmark = pytest.mark.unit

GATEWAY = f"{FULLNAME}-gateway"
WORKER = f"{FULLNAME}-ingestion"
NO_STORE = ["--set", "gateway.rateLimitStore.existingSecret="]
TWO_FIXED = ["--set", "gateway.autoscaling.enabled=false", "--set", "gateway.replicas=2"]
ONE_GATEWAY = ["--set", "gateway.autoscaling.enabled=false", "--set", "gateway.replicas=1"]
ONE_GATEWAY += ["--set", "gateway.podDisruptionBudget.enabled=false"]
DEVELOPMENT = ["--set", "config.environment=development"]
WARNING = "no shared rate-limit store is set"


def gateway_env(*args: str) -> dict[str, dict[str, object]]:
    return env_of(next(containers(find(render(*args), "Deployment", GATEWAY))))


def test_the_store_url_comes_from_the_named_secret() -> None:
    env = gateway_env(
        "--set", "gateway.rateLimitStore.existingSecret=redis-auth",
        "--set", "gateway.rateLimitStore.key=holdfast-url",
    )  # fmt: skip
    assert env["HOLDFAST_LIMITS__STORAGE_URL"] == {
        "name": "HOLDFAST_LIMITS__STORAGE_URL",
        "valueFrom": {"secretKeyRef": {"name": "redis-auth", "key": "holdfast-url"}},
    }
    # the default names a Secret like the database's, key `url`
    default = gateway_env()["HOLDFAST_LIMITS__STORAGE_URL"]
    assert default["valueFrom"] == {
        "secretKeyRef": {"name": "holdfast-rate-limit-store", "key": "url"}
    }
    workers = render("--set", "ingestion.enabled=true")  # workers serve no route
    worker = next(containers(find(workers, "Deployment", WORKER)))
    assert "HOLDFAST_LIMITS__STORAGE_URL" not in env_of(worker)


@pytest.mark.parametrize(
    "replicas",
    [TWO_FIXED, ["--set", "gateway.autoscaling.enabled=true"]],
    ids=["replicas-2", "autoscaling"],
)
def test_production_with_several_gateways_and_no_store_is_refused(replicas: list[str]) -> None:
    stderr = render_failure(*NO_STORE, *replicas)
    assert "gateway.rateLimitStore.existingSecret" in stderr
    assert "N times the limit" in stderr


def test_one_gateway_or_a_store_given_through_extra_env_renders_in_production() -> None:
    env = gateway_env(*NO_STORE, *ONE_GATEWAY)
    assert "HOLDFAST_LIMITS__STORAGE_URL" not in env  # one pod: its memory is the whole count
    extra = ["--set", "gateway.extraEnv[0].name=HOLDFAST_LIMITS__STORAGE_URL"]
    extra += ["--set", "gateway.extraEnv[0].valueFrom.secretKeyRef.name=mine"]
    extra += ["--set", "gateway.extraEnv[0].valueFrom.secretKeyRef.key=url"]
    env = gateway_env(*NO_STORE, *TWO_FIXED, *extra)
    assert env["HOLDFAST_LIMITS__STORAGE_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "mine", "key": "url"}
    }
    # both ways at once would render the variable twice
    assert "keep one" in render_failure(*TWO_FIXED, *extra)


def notes(tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it (helm template skips it): a copy of the chart renders
    it through tpl into a ConfigMap."""
    chart = tmp_path / "holdfast"
    if not chart.exists():
        shutil.copytree(CHART, chart)
        shutil.copy(chart / "templates/NOTES.txt", chart / "notes.tpl")
        (chart / "templates/rendered-notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered-notes\ndata:\n"
            '  notes: |\n    {{- tpl (.Files.Get "notes.tpl") . | nindent 4 }}\n'
        )
    done = helm("template", "t", str(chart), "--show-only", "templates/rendered-notes.yaml", *args)
    assert done.returncode == 0, done.stderr
    text: str = yaml.safe_load(done.stdout)["data"]["notes"]
    return text


def test_development_with_several_gateways_and_no_store_renders_with_a_warning(
    tmp_path: Path,
) -> None:
    env = gateway_env(*NO_STORE, *DEVELOPMENT, *TWO_FIXED)
    assert "HOLDFAST_LIMITS__STORAGE_URL" not in env
    warned = notes(tmp_path, *NO_STORE, *DEVELOPMENT, *TWO_FIXED)
    assert WARNING in warned and "gateway.rateLimitStore.existingSecret" in warned
    assert WARNING not in notes(tmp_path, *NO_STORE, *DEVELOPMENT, *ONE_GATEWAY)
    with_store = notes(tmp_path, *DEVELOPMENT, *TWO_FIXED)
    assert WARNING not in with_store
    assert "holdfast-rate-limit-store (key url)" in with_store
