"""``holdfast verify-access``: its input checks, exit code and table (the probes themselves are
tested in test_probes.py and against the real stack in tests/integration)."""

from __future__ import annotations

import pytest
from rich.console import Console
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.cli.verify_access import callers_of, checked_url, exit_code, report_table
from gateway.probes.records import Leak, Probe, ProbeReport, Surface

pytestmark = pytest.mark.unit


def test_keys_become_numbered_callers_and_are_never_labelled_by_their_value() -> None:
    callers = callers_of(["hf_secret_a", " hf_secret_b "])
    assert [c.label for c in callers] == ["#1", "#2"]
    assert callers[1].key == "hf_secret_b" and callers[0].groups is None


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (["only-one"], "at least two"),
        (["a", ""], "#2 is empty"),
        (["a", "b", "a"], "#1 is given twice"),
    ],
)
def test_bad_keys_get_a_one_line_reason(keys: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        callers_of(keys)


def test_url_needs_a_scheme() -> None:
    assert checked_url("http://gw:8080/") == "http://gw:8080"
    with pytest.raises(ValueError, match="http://"):
        checked_url("gw:8080")


def test_exit_code_is_1_on_any_leak_and_the_table_counts_every_surface() -> None:
    report = ProbeReport(seed=9)
    report.probes[Surface.SEARCH] = 10
    assert exit_code(report) == 0
    probe = Probe(Surface.SEARCH, "#2", "POST", "/v1/search", "q")
    report.leaks.append(Leak(probe, "doc_id", "abc", "abc", "foreign doc_id returned"))
    assert exit_code(report) == 1
    console = Console(width=100, record=True)
    console.print(report_table(report))
    text = console.export_text()
    assert "seed 9" in text and all(s.value in text for s in Surface)
    assert "#2 POST /v1/search" in report.failure_text()


def test_the_command_explains_itself_and_refuses_one_key() -> None:
    runner = CliRunner()
    help_text = runner.invoke(app, ["verify-access", "--help"]).output
    assert "--key" in help_text and "--seed" in help_text and "--probes" in help_text
    assert "leak" in help_text
    result = runner.invoke(app, ["verify-access", "--key", "a", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
