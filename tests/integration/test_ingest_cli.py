"""`holdfast ingest` talks to the running gateway: summary table, exit status, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli.main import app
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


def test_cli_ingest_reports_each_file_and_fails_when_one_is_rejected(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "guide.md").write_text("# Guide\n\nBadges open the side door.\n")
    (tmp_path / "blank.txt").write_bytes(b"")
    args = ["ingest", str(tmp_path), "--groups", "cli", "--recursive", "--no-redact"]
    args += ["--key", live_stack.admin_key, "--url", live_stack.url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "guide.md" in result.output and "indexed" in result.output
    assert "blank.txt" in result.output and "empty file" in result.output
    assert "1 failed" in result.output


def test_cli_ingest_says_clearly_when_no_gateway_runs(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    result = CliRunner().invoke(
        app,
        [
            "ingest",
            str(tmp_path / "a.md"),
            "--groups",
            "x",
            "--key",
            "k",
            "--url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 1
    assert "no gateway is running at http://127.0.0.1:9" in result.output


def test_cli_ingest_splits_more_files_than_one_upload_takes_into_several_jobs(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    for name in ("one", "two", "three"):
        (tmp_path / f"{name}.md").write_text(
            f"# {name.title()}\n\nThe {name} gate opens at dawn.\n"
        )
    args = ["ingest", str(tmp_path), "--groups", "cli-split", "--no-redact"]
    args += ["--key", live_stack.admin_key, "--url", live_stack.url]
    result = CliRunner().invoke(app, args, env={"HOLDFAST_INGESTION__MAX_FILES_PER_JOB": "2"})
    assert result.exit_code == 0, result.output
    assert "job 1 of 2: 2 file(s)" in result.output and "job 2 of 2: 1 file(s)" in result.output
    assert result.output.count("0 failed") == 2
    assert all(name in result.output for name in ("one.md", "two.md", "three.md"))
