"""``holdfast`` on bad input: one ``error:`` line saying what to fix, never a traceback; and a
key the CLI creates is shown even when the audit log cannot take the record of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from gateway.cli import eval as eval_cli
from gateway.cli.main import app
from gateway.cli.stack import run_up
from gateway.local import stack
from gateway.offline import OFFLINE_ENV
from gateway.security.keys import KeyStore
from gateway.settings import load_settings

pytestmark = pytest.mark.unit

BAD_URL = "http://host:80a"


@pytest.fixture
def home(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOLDFAST_HOME; the offline variables the CLI sets are put back afterwards."""
    for name, value in OFFLINE_ENV.items():
        monkeypatch.setenv(name, value)
    return isolated_env / "home"


@pytest.fixture
def config_file(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = isolated_env / "holdfast.yaml"
    monkeypatch.setenv("HOLDFAST_CONFIG", str(path))
    return path


@pytest.fixture
def golden(tmp_path: Path) -> Path:
    path = tmp_path / "golden.jsonl"
    path.write_text('{"id": "q1", "question": "How much leave?", "type": "unanswerable"}\n')
    return path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> None:
    """Exited on purpose (typer.Exit, not an exception) with one ``error:`` naming the problem."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.output.count("error:") == 1, result.output
    flat = "".join(result.output.split())  # rich wraps long lines, even inside a path
    for fragment in fragments:
        assert "".join(fragment.split()) in flat, result.output


def corrupt(path: Path) -> None:
    """A file SQLite refuses to open ("file is not a database")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an SQLite database, only some text " * 100)


# --- 1. every broken settings source --------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("gateway: [\n", "is not valid YAML"),
        ("- gateway\n- database\n", "must be a mapping of sections"),
        ("42\n", "must be a mapping of sections"),
    ],
    ids=["parser-error", "top-level-list", "top-level-scalar"],
)
@pytest.mark.parametrize("command", [["keys", "list"], ["eval", "--key", "k"]])
def test_a_broken_config_file_is_named_in_one_line(
    home: Path,
    config_file: Path,
    golden: Path,
    yaml_text: str,
    expected: str,
    command: list[str],
) -> None:
    config_file.write_text(yaml_text)
    args = [*command, "--golden", str(golden)] if command[0] == "eval" else command
    assert_one_line_error(invoke(*args), str(config_file), expected)


def test_bad_json_in_an_env_var_names_the_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOLDFAST_GATEWAY", "{bad")
    assert_one_line_error(invoke("keys", "list"), "cannot parse HOLDFAST_GATEWAY", "unset it")


def test_a_missing_database_url_file_is_named_in_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "secrets" / "database-url"
    monkeypatch.setenv("HOLDFAST_DATABASE__URL_FILE", str(missing))
    assert_one_line_error(
        invoke("keys", "list"), f"database.url_file {missing}", "unset database.url_file"
    )


# --- 2. an unreadable file to ingest --------------------------------------------------------


def test_an_unreadable_file_to_ingest_is_named_in_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# payroll\n")
    real_open = Path.open

    def refuse_secret(self: Path, *args: object, **kwargs: object) -> object:
        if self.name == "secret.md":  # chmod 000 does not stop root, who may run the tests
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", refuse_secret)
    result = invoke("ingest", str(secret), "--groups", "hr", "--key", "k", "--url", "http://x:9")
    assert_one_line_error(result, f"cannot read {secret.resolve()}", "Permission denied")


# --- 3. a malformed --url -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["query", "q", "--key", "k"],
        ["query", "q", "--stream", "--key", "k"],
        ["audit", "--key", "k"],
        ["ingest", "{file}", "--groups", "hr", "--key", "k"],
        ["eval", "--golden", "{golden}", "--key", "k"],
    ],
    ids=["query", "query-stream", "audit", "ingest", "eval"],
)
def test_a_malformed_url_is_refused_in_one_line(
    home: Path, tmp_path: Path, golden: Path, command: list[str]
) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# leave\n")
    args = [a.format(file=doc, golden=golden) for a in command]
    assert_one_line_error(invoke(*args, "--url", BAD_URL), f"--url '{BAD_URL}'", "not a valid URL")


def test_verify_access_refuses_a_malformed_url_as_bad_input(home: Path) -> None:
    result = invoke("verify-access", "--key", "a", "--key", "b", "--url", BAD_URL)
    assert_one_line_error(result, "not a valid URL", code=2)


# --- 4. the eval gate file, read before the run ---------------------------------------------


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Calls of ``run_eval``; the fake answers like a gateway that measured nothing."""
    calls: list[str] = []

    def fake_run_eval(golden: Path, **_: object) -> eval_cli.EvalRun:
        calls.append(str(golden))
        return eval_cli.EvalRun()

    monkeypatch.setattr(eval_cli, "run_eval", fake_run_eval)
    return calls


@pytest.mark.parametrize(
    ("gate_text", "expected"),
    [
        ("{bad", "cannot read it as JSON"),
        ('{"min_hybrid_ndcg_at_10": 3}', "min_hybrid_ndcg_at_10"),
        ('{"min_ndcg": 0.5}', "min_ndcg"),
    ],
    ids=["not-json", "out-of-range", "unknown-key"],
)
def test_a_bad_gate_file_fails_before_any_question_is_asked(
    home: Path, tmp_path: Path, golden: Path, runs: list[str], gate_text: str, expected: str
) -> None:
    gate = tmp_path / "gate.json"
    gate.write_text(gate_text)
    result = invoke("eval", "--golden", str(golden), "--key", "k", "--gate", str(gate))
    assert_one_line_error(result, f"--gate {gate}", expected, code=2)
    assert runs == []


def test_a_missing_gate_file_fails_before_any_question_is_asked(
    home: Path, tmp_path: Path, golden: Path, runs: list[str]
) -> None:
    missing = tmp_path / "nope.json"
    result = invoke("eval", "--golden", str(golden), "--key", "k", "--gate", str(missing))
    assert result.exit_code == 2 and "does not exist" in result.output
    assert runs == []


def test_a_good_gate_file_still_gates_the_run_and_the_reports_are_written(
    home: Path, tmp_path: Path, golden: Path, runs: list[str]
) -> None:
    gate = tmp_path / "gate.json"
    gate.write_text('{"min_hybrid_ndcg_at_10": 0.5}')
    reports = tmp_path / "reports"
    args = ["eval", "--golden", str(golden), "--key", "k", "--gate", str(gate)]
    result = invoke(*args, "--out", str(reports))
    assert runs == [str(golden)]
    assert result.exit_code == 1 and "gate failed" in result.output
    assert any(reports.iterdir())


# --- 5. the key store's database errors -----------------------------------------------------


def test_a_broken_key_database_is_one_line_in_keys_list(home: Path) -> None:
    corrupt(load_settings().keys_db)
    assert_one_line_error(invoke("keys", "list"), "key database: file is not a database")


def test_a_broken_key_database_is_one_line_in_keys_create(home: Path) -> None:
    corrupt(load_settings().keys_db)
    result = invoke("keys", "create", "alice", "--groups", "hr")
    assert_one_line_error(result, "key database: file is not a database", "try again")


# --- 6. the audit log down while a key is created -------------------------------------------


def test_keys_create_shows_the_key_even_when_the_audit_log_is_down(home: Path) -> None:
    settings = load_settings()
    corrupt(settings.audit_db)
    result = invoke("keys", "create", "alice", "--groups", "hr")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output and "warning:" in result.output
    key = next(line for line in result.output.splitlines() if line.startswith("hf_"))
    principal = KeyStore(settings.keys_db).authenticate(key)
    assert principal is not None and principal.name == "alice"


def test_keys_revoke_reports_the_revocation_even_when_the_audit_log_is_down(home: Path) -> None:
    settings = load_settings()
    key_id, key = KeyStore(settings.keys_db).create("alice", groups=["hr"], roles=["query"])
    corrupt(settings.audit_db)
    result = invoke("keys", "revoke", key_id)
    assert result.exit_code == 0, result.output
    assert "revoked 1 key(s)" in result.output and "warning:" in result.output
    assert KeyStore(settings.keys_db).authenticate(key) is None


def test_up_shows_the_new_admin_key_even_when_the_audit_log_is_down(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    corrupt(settings.audit_db)
    started = stack.UpResult(started=[], model_imported=False, admin_key="hf_the-admin-key")
    monkeypatch.setattr(stack, "up", lambda *_args, **_kwargs: started)
    run_up(settings)
    printed = capsys.readouterr()
    assert "hf_the-admin-key" in printed.out
    assert "warning:" in printed.err
