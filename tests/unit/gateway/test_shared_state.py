"""Shared state, pure parts: the database URL forms, pool timeouts, the database settings section,
the migration chain, the choice of stores at the composition root, and job records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from gateway.container import build_audit_log, build_key_store, database_engine
from gateway.ingest_jobs import job_store
from gateway.models.write_fence import write_fence_for
from gateway.security.keys import KeyStore
from gateway.settings import load_settings
from gateway.state.engine import PoolPolicy, build_engine, connect_args, conninfo
from gateway.state.migrate import MIGRATIONS, head
from gateway.state.schema import metadata
from ingestion.jobs import JobFile, JobStore, final_status, job_from_rows
from services.errors import ConfigError, NotFoundError
from services.redaction_profile import RedactionProfile

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HOLDFAST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOLDFAST_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOLDFAST_CONFIG", str(tmp_path / "holdfast.yaml"))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://u:p@db:5432/hf", "postgresql://u:p@db:5432/hf"),
        ("postgresql+psycopg2://u@db/hf", "postgresql://u@db/hf"),
        ("postgres://u@db/hf", "postgres://u@db/hf"),
        (" host=db dbname=hf user=u ", "host=db dbname=hf user=u"),
    ],
)
def test_conninfo_accepts_sqlalchemy_urls_and_libpq_dsns(url: str, expected: str) -> None:
    assert conninfo(url) == expected


@pytest.mark.parametrize("url", ["", "sqlite:///x.db", "mysql+pymysql://u@db/hf", "just-a-host"])
def test_conninfo_refuses_what_is_not_postgresql(url: str) -> None:
    with pytest.raises(ConfigError):
        conninfo(url)


def test_every_connection_carries_connect_and_statement_timeouts() -> None:
    args = connect_args(PoolPolicy(connect_timeout_s=2.4, statement_timeout_s=1.5))
    assert args == {"connect_timeout": 2, "options": "-c statement_timeout=1500"}
    tiny = connect_args(PoolPolicy(connect_timeout_s=0.1, statement_timeout_s=0.0001))
    assert tiny["connect_timeout"] == 1 and tiny["options"].endswith("=1"), "0 means no limit"


def test_engine_pool_has_a_checkout_timeout_and_does_no_io() -> None:
    engine = build_engine("host=127.0.0.1 port=1 dbname=x", PoolPolicy(pool_timeout_s=3.0))
    assert engine.pool.timeout() == 3.0  # type: ignore[attr-defined]
    assert engine.pool.size() == 5  # type: ignore[attr-defined]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_database_url_from_env_file_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().database.dsn() is None
    monkeypatch.setenv("HOLDFAST_DATABASE__URL", "")
    assert load_settings().database.dsn() is None, "an empty variable keeps embedded SQLite"
    secret = tmp_path / "db-url"
    secret.write_text("postgresql://u:pw@db/hf\n")
    monkeypatch.setenv("HOLDFAST_DATABASE__URL_FILE", str(secret))
    assert load_settings().database.dsn() == "postgresql://u:pw@db/hf"
    monkeypatch.setenv("HOLDFAST_DATABASE__URL", "host=db dbname=hf")
    settings = load_settings()
    assert settings.database.dsn() == "host=db dbname=hf", "url wins over url_file"
    assert "dbname" not in repr(settings.database), "the URL is a secret"


def test_without_a_database_every_store_stays_sqlite() -> None:
    settings = load_settings()
    assert database_engine(settings) is None
    assert isinstance(build_key_store(settings), KeyStore)
    assert isinstance(job_store(settings), JobStore)
    assert type(build_audit_log(settings)).__name__ == "SqliteAuditLog"
    assert type(write_fence_for(settings)).__name__ == "SqliteWriteFence"


def test_with_a_database_every_store_is_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOLDFAST_DATABASE__URL", "postgresql://u@127.0.0.1:1/hf")
    settings = load_settings()
    assert type(build_key_store(settings)).__name__ == "PostgresKeyStore"
    assert type(job_store(settings)).__name__ == "PostgresJobStore"
    assert type(build_audit_log(settings)).__name__ == "PostgresAuditLog"
    assert type(write_fence_for(settings)).__name__ == "PostgresWriteFence"
    assert database_engine(settings) is database_engine(settings), "one pool per process"


def test_migrations_form_one_chain_whose_head_creates_every_table() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    assert scripts.get_heads() == [head()]
    chain = list(scripts.walk_revisions())
    assert chain[-1].down_revision is None
    source = "".join(Path(str(s.path)).read_text() for s in chain)
    for table in metadata.tables.values():
        assert f'"{table.name}"' in source, f"no migration creates {table.name}"
        for column in table.columns:
            assert f'"{column.name}"' in source, f"{table.name}.{column.name} in no migration"
    assert "audit_log" in source


def _files(*statuses: str) -> tuple[JobFile, ...]:
    return tuple(JobFile(idx=i, source=f"f{i}", path="", status=s) for i, s in enumerate(statuses))


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("indexed", "unchanged", "duplicate"), "succeeded"),
        (("indexed", "failed"), "partial"),
        (("rejected", "failed"), "failed"),
    ],
)
def test_final_status(statuses: tuple[str, ...], expected: str) -> None:
    assert final_status(_files(*statuses)) == expected


def test_job_rows_of_an_old_release_read_as_they_meant() -> None:
    row = {
        "job_id": "j",
        "owner": "k",
        "status": "queued",
        "groups": '["hr"]',
        "redact": 1,
        "redaction_profile": "",
        "writer_groups": None,
        "metadata": "{}",
        "created_at": "t",
        "finished_at": None,
    }
    job = job_from_rows(row, [])
    assert job.redaction is RedactionProfile.STRICT and job.writer_groups == ("hr",)
    admin = job_from_rows({**row, "writer_groups": '"*"', "redaction_profile": "none"}, [])
    assert admin.writer_groups is None and admin.redaction is RedactionProfile.NONE


def test_database_errors_surface_as_one_line_state_unavailable() -> None:
    from sqlalchemy.exc import OperationalError

    from gateway.state.engine import StateUnavailableError, guarded

    @guarded
    def broken() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused\nDETAIL: more"))

    with pytest.raises(StateUnavailableError, match=r"^shared state database: connection refused$"):
        broken()
    assert StateUnavailableError.status == 503, "retryable at the edge, like other backends"

    @guarded
    def missing() -> None:
        raise NotFoundError("no such job")

    with pytest.raises(NotFoundError):
        missing()
