"""Shared state on one real PostgreSQL (Debian's, started here): `holdfast db upgrade`, the start
check, the key and job stores, and two real gateway processes on different ports sharing it: a
key created through A's admin API authenticates on B, a job queued on A is followed on B to its
end, and the audit log holds both gateways' requests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from gateway.container import build_components, database_engine
from gateway.local import stack
from gateway.local.processes import ProcessSupervisor, StartupError
from gateway.settings import Settings
from gateway.state.jobs import PostgresJobStore
from gateway.state.keys import PostgresKeyStore
from gateway.state.migrate import SchemaOutOfDateError, current, head, require_head, upgrade
from gateway.state.write_fence import PostgresWriteFence
from ingestion.jobs import NewFile
from ingestion.leases import Lease, LeaseLostError
from services.redaction_profile import RedactionProfile
from tests.integration.conftest import PORT_BASE
from tests.integration.pg_server import running_postgres
from tests.integration.shared_stack import HOLDFAST, prepare, single_weaviate, start_gateway

pytestmark = pytest.mark.integration
PG_PORT = PORT_BASE + 31
BASE = PORT_BASE + 40  # weaviate at BASE..BASE+5, gateways at BASE+7 and BASE+8
ADMIN_KEY = "hf_" + "a" * 43  # handed to both gateways as the platform's bootstrap admin key
SHARED_ENV = {
    "HOLDFAST_WEAVIATE__API_KEY": "shared-state-test-weaviate-key",
    "HOLDFAST_INGESTION__ID_KEY": "shared-state-test-id-key-0123456789abcdef",
    "HOLDFAST_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
}


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    with running_postgres(PG_PORT) as url:
        yield url


def _settings(home: Path, dsn: str, gateway_port: int) -> Settings:
    return Settings(
        home=home,
        weaviate=single_weaviate(BASE, SHARED_ENV["HOLDFAST_WEAVIATE__API_KEY"]),
        ollama={"managed": False, "port": BASE + 6},
        gateway={"port": gateway_port},
        redaction={"enabled": False},
        database={"url": dsn},
    )


def _db(*args: str, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOLDFAST_DATABASE__URL": dsn}
    return subprocess.run(
        [HOLDFAST, "db", *args], env=env, capture_output=True, text=True, timeout=120
    )


def _reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def test_gateway_refuses_an_old_schema_until_db_upgrade(dsn: str, tmp_path: Path) -> None:
    _reset(dsn)
    settings = _settings(tmp_path, dsn, BASE + 7)
    engine = database_engine(settings)
    assert engine is not None
    with pytest.raises(SchemaOutOfDateError, match="run `holdfast db upgrade`"):
        build_components(settings)
    behind = _db("current", dsn=dsn)
    assert behind.returncode == 0 and "behind" in behind.stdout
    done = _db("upgrade", dsn=dsn)
    assert done.returncode == 0, done.stderr
    assert current(engine) == head()
    require_head(engine)
    assert _db("upgrade", dsn=dsn).returncode == 0, "upgrading twice is harmless"
    assert "up to date" in _db("current", dsn=dsn).stdout


def test_concurrent_upgrades_serialise_and_a_newer_schema_is_named(
    dsn: str, tmp_path: Path
) -> None:
    _reset(dsn)
    engine = database_engine(_settings(tmp_path, dsn, BASE + 7))
    assert engine is not None
    with ThreadPoolExecutor(2) as pool:
        reached = list(pool.map(lambda _: upgrade(engine), range(2)))
    assert reached == [head(), head()], "the second upgrade waits, then finds nothing to do"
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaOutOfDateError, match="newer than this gateway"):
        require_head(engine)


def test_db_commands_fail_in_one_line_without_a_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOLDFAST_DATABASE")}
    env["COLUMNS"] = "400"  # one message, one line: no terminal wrapping
    env["HOLDFAST_HOME"] = str(tmp_path)
    unset = subprocess.run(
        [HOLDFAST, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert unset.returncode == 1 and "database.url is not set" in unset.stderr
    env["HOLDFAST_DATABASE__URL"] = f"postgresql://holdfast@127.0.0.1:{PORT_BASE + 39}/x"
    down = subprocess.run(
        [HOLDFAST, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 1 and "Traceback" not in down.stderr, down.stderr
    assert "error: database upgrade failed: connection failed" in down.stderr


def _upgraded(dsn: str, tmp_path: Path) -> Settings:
    _reset(dsn)
    assert _db("upgrade", dsn=dsn).returncode == 0
    return _settings(tmp_path, dsn, BASE + 7)


def test_key_store_shares_keys_and_revocations(dsn: str, tmp_path: Path) -> None:
    engine = database_engine(_upgraded(dsn, tmp_path))
    assert engine is not None
    one, other = PostgresKeyStore(engine), PostgresKeyStore(engine)
    key_id, key = one.create("ops", groups=["handbook"], roles=["query", "ingest"])
    principal = other.authenticate(key)
    assert principal is not None and principal.key_id == key_id
    assert principal.groups == ("handbook",) and principal.roles == {"query", "ingest"}
    assert other.import_key(ADMIN_KEY, "admin", groups=["admin"], roles=["admin"]) == (
        one.import_key(ADMIN_KEY, "admin", groups=["admin"], roles=["admin"])
    )
    assert one.has_active_role("admin")
    assert other.revoke("ops") == 1
    assert one.authenticate(key) is None
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT string_agg(key_hash, ',') FROM api_keys").fetchone()
    assert stored is not None and key not in stored[0]


def test_job_store_keeps_uploads_in_the_database_and_hands_a_job_to_one_worker(
    dsn: str, tmp_path: Path
) -> None:
    engine = database_engine(_upgraded(dsn, tmp_path))
    assert engine is not None
    staged = tmp_path / "staged" / "job_x"
    staged.mkdir(parents=True)
    payload = os.urandom(300_000)
    (staged / "00000.pdf").write_bytes(payload)
    writer = PostgresJobStore(engine, spool=tmp_path / "a")
    job_id = writer.create(
        owner="k1",
        groups=["g"],
        redaction=RedactionProfile.NONE,
        metadata={"m": 1},
        files=[
            NewFile("a.pdf", str(staged / "00000.pdf")),
            NewFile("big.pdf", str(staged / "00001.pdf"), rejected_reason="over the limit"),
        ],
        writer_groups=None,
        job_id="job_x",
    )
    assert not staged.exists(), "the staged copy goes once its bytes are in PostgreSQL"
    workers = [PostgresJobStore(engine, spool=tmp_path / n) for n in ("b", "c")]
    assert [w.next_runnable() for w in workers] == [job_id, job_id], "a look claims nothing"
    runner, loser = workers
    lease = runner.claim("worker-b", lease_s=60, max_attempts=3)
    assert lease is not None and lease.job_id == job_id and lease.attempt == 1
    assert loser.claim("worker-c", lease_s=60, max_attempts=3) is None, "nobody else's"
    with pytest.raises(LeaseLostError):
        loser.record_file(job_id, 0, status="indexed", lease=Lease(job_id, "worker-c", 1))
    job = runner.get(job_id)
    assert job.status == "running" and job.writer_groups is None
    assert writer.counts_by_status().get("running") == 1, "the queue-depth metric's source"
    assert [f.status for f in job.files] == ["pending", "rejected"]
    local = runner.upload_path(job_id, job.files[0])
    assert local.read_bytes() == payload and local.suffix == ".pdf"
    assert local.is_relative_to(tmp_path / "b")
    runner.record_file(job_id, 0, status="indexed", doc_id="d1", chunks=3, lease=lease)
    assert runner.finish(job_id, lease=lease) == "partial"
    followed = writer.get(job_id)
    assert followed.chunks_written == 3 and followed.finished_at is not None
    with psycopg.connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM job_uploads").fetchone()
    assert left == (0,), "a finished job's bytes are dropped"
    assert workers[0].next_runnable() is None


def test_two_gateways_share_keys_jobs_and_audit(dsn: str, tmp_path: Path) -> None:
    settings_a = _upgraded(dsn, tmp_path / "a")
    settings_b = _settings(tmp_path / "b", dsn, BASE + 8)
    for settings in (settings_a, settings_b):
        prepare(settings)
    weaviate = ProcessSupervisor(settings_a.run_dir / "wv", settings_a.logs_dir)
    supervisors = {
        "a": ProcessSupervisor(settings_a.run_dir, settings_a.logs_dir),
        "b": ProcessSupervisor(settings_b.run_dir, settings_b.logs_dir),
    }
    env = {"HOLDFAST_DATABASE__URL": dsn, **SHARED_ENV}
    try:
        weaviate.start(stack.weaviate_spec(settings_a))
        for name, settings in (("a", settings_a), ("b", settings_b)):
            start_gateway(supervisors[name], settings, env)
        url_a, url_b = settings_a.gateway.base_url, settings_b.gateway.base_url
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        made = httpx.post(
            f"{url_a}/admin/keys",
            json={"name": "uploader", "groups": ["handbook"], "roles": ["ingest", "query"]},
            headers=admin,
            timeout=30,
        )
        assert made.status_code == 201, made.text
        key = {"Authorization": f"Bearer {made.json()['key']}"}
        text = "Annual leave is twenty-five days a year.\n\n" * 20
        queued = httpx.post(
            f"{url_a}/v1/documents",
            files=[("files", ("leave.md", text.encode(), "text/markdown"))],
            data={"access_groups": "handbook"},
            headers=key,
            timeout=60,
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        deadline, job = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            seen = httpx.get(f"{url_b}/v1/jobs/{job_id}", headers=key, timeout=30)
            assert seen.status_code == 200, seen.text  # A's key and A's job, read on B
            job = seen.json()
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.5)
        assert job["status"] == "succeeded", job
        assert job["files"][0]["status"] == "indexed" and job["chunks_written"] >= 1
        assert httpx.get(f"{url_b}/v1/jobs/{job_id}", timeout=30).status_code == 401
        records = httpx.get(
            f"{url_a}/admin/audit", params={"limit": 200}, headers=admin, timeout=30
        ).json()["records"]
        endpoints = {r["endpoint"] for r in records}
        # A served the key and the upload, B the job polls: one log holds all three
        assert {"POST /admin/keys", "POST /v1/documents", "GET /v1/jobs/{job_id}"} <= endpoints
        on_b = httpx.get(f"{url_b}/admin/audit", params={"limit": 200}, headers=admin, timeout=30)
        assert {r["id"] for r in on_b.json()["records"]} >= {r["id"] for r in records}
    except StartupError as exc:
        pytest.fail(f"{exc}\n{exc.log_tail if hasattr(exc, 'log_tail') else ''}")
    finally:
        for supervisor in supervisors.values():
            supervisor.stop("gateway")
        weaviate.stop("weaviate")


def test_a_real_gateway_process_refuses_to_start_behind_the_schema(
    dsn: str, tmp_path: Path
) -> None:
    _reset(dsn)
    settings = _settings(tmp_path, dsn, BASE + 7)
    prepare(settings)
    supervisor = ProcessSupervisor(settings.run_dir, settings.logs_dir)
    try:
        with pytest.raises(StartupError) as refused:
            start_gateway(
                supervisor,
                settings,
                {"HOLDFAST_DATABASE__URL": dsn, **SHARED_ENV},
                startup_timeout_s=60,
            )
        log = (settings.logs_dir / "gateway.log").read_text()
        assert "run `holdfast db upgrade`" in log, refused.value
    finally:
        supervisor.stop("gateway")


def test_write_fence_is_shared_and_exclusive(dsn: str, tmp_path: Path) -> None:
    engine = database_engine(_upgraded(dsn, tmp_path))
    assert engine is not None
    writer, reindex, other = (PostgresWriteFence(engine) for _ in range(3))
    lease = writer.try_lease("ingest job j1", ttl_s=30)
    assert lease is not None
    fence = reindex.try_fence("reindex on host b", ttl_s=30)
    assert fence is not None and other.try_fence("another reindex", ttl_s=30) is None
    assert other.fence_holder() == "reindex on host b"
    assert writer.try_lease("ingest job j2", ttl_s=30) is None, "no lease while fenced"
    assert reindex.leases() == ["ingest job j1"], "the fence waits for the earlier lease"
    assert writer.renew_lease(lease, ttl_s=30)
    writer.end_lease(lease)
    assert reindex.leases() == []
    assert reindex.renew_fence(fence, ttl_s=30) and not other.renew_fence("not-it", ttl_s=30)
    reindex.lower_fence(fence)
    assert other.fence_holder() is None
    short = other.try_fence("dies at once", ttl_s=0.2)
    assert short is not None
    time.sleep(0.5)
    assert not other.renew_fence(short, ttl_s=30), "an expired fence is gone"
    assert writer.try_lease("ingest job j3", ttl_s=0.2) is not None
    time.sleep(0.5)
    assert reindex.leases() == [], "an expired lease holds nobody back"
