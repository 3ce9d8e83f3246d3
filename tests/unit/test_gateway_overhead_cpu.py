"""The overhead benchmark's accounting: /proc CPU readings charged to the path that ran, and
the gateway's questions per embedding run and its share of kept hit vectors between two
/metrics readings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.gateway_overhead import (
    NATIVE_THREADS,
    CpuMeter,
    PathRun,
    ThreadMeter,
    cpu_table,
    embedding_runs,
    hit_vectors,
    kept_share,
    level_blocks,
    machine_ticks,
    mean_run_size,
    python_thread_names,
    stack_pids,
    thread_role,
    thread_table,
)
from gateway.local.processes import ProcessSupervisor

pytestmark = pytest.mark.unit


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_step_is_charged_the_cpu_its_process_spent_and_a_gone_process_is_left_out() -> None:
    meter = CpuMeter({"client": os.getpid(), "gone": 2**22 + 7})
    run = PathRun(latency_ms=[1.0] * 10)
    meter.charge(run, lambda: _spin(0.2))
    assert set(run.cpu_s) == {"client"}
    assert 0.15 <= run.cpu_s["client"] <= 1.0
    per_request = run.summary()["cpu_ms_per_request"]["client"]
    assert 15 <= per_request <= 100  # 0.2 s over 10 requests, in ms
    busy, total = run.machine_ticks
    assert 0 < busy <= total  # this process kept at least one core busy meanwhile
    assert 0.0 < run.summary()["machine_busy"] <= 1.0


def test_the_machine_is_busy_for_all_but_its_idle_and_io_wait_ticks(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  600 10 200 1000 50 5 15 20 300 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    assert machine_ticks(stat) == (850, 1900)
    assert PathRun().summary()["machine_busy"] is None  # nothing measured, nothing claimed


CHILD_SPINS = (
    "import sys, time\n"
    "end = time.process_time() + 0.3\n"
    "while time.process_time() < end: pass\n"
    "print('spun', flush=True)\n"
    "sys.stdin.read()\n"
)


def test_a_process_is_charged_the_cpu_its_live_children_spent() -> None:
    """A gateway with several uvicorn workers does its work in children of the recorded pid."""
    meter = CpuMeter({"client": os.getpid()})
    run = PathRun(latency_ms=[1.0])
    children: list[subprocess.Popen[str]] = []

    def start_a_child_that_spins() -> None:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_SPINS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None and child.stdout.readline() == "spun\n"

    try:
        meter.charge(run, start_a_child_that_spins)
    finally:
        for child in children:
            child.communicate(timeout=10)
    assert run.cpu_s["client"] >= 0.25  # the child's 0.3 s, though this process mostly waited


def test_the_stack_pids_are_the_running_processes_the_supervisor_recorded(tmp_path: Path) -> None:
    supervisor = ProcessSupervisor(tmp_path, tmp_path)
    assert stack_pids(supervisor) == {"client": os.getpid()}
    argv = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().decode().split("\0")[:-1]
    (tmp_path / "gateway.pid").write_text(json.dumps({"pid": os.getpid(), "argv": argv}))
    (tmp_path / "weaviate.pid").write_text(json.dumps({"pid": 2**22 + 7, "argv": ["weaviate"]}))
    assert stack_pids(supervisor) == {"client": os.getpid(), "gateway": os.getpid()}


def test_the_cpu_table_has_a_row_per_path_and_level_with_its_total() -> None:
    level = {
        "concurrency": 8,
        "raw": {"cpu_ms_per_request": {"client": 5.5, "weaviate": 4.5}},
        "gateway": {"cpu_ms_per_request": {"client": 1.5, "gateway": 9.5, "weaviate": 6.0}},
    }
    level["raw"]["machine_busy"] = 0.962
    lines = cpu_table([level])
    assert "| conc. | path | client | gateway | weaviate | total | machine busy |" in lines
    assert "| 8 | raw | 5.5 | - | 4.5 | 10.0 | 96.2% |" in lines
    assert "| 8 | gateway | 1.5 | 9.5 | 6.0 | 17.0 | - |" in lines
    assert cpu_table([{"concurrency": 1, "raw": {}, "gateway": {}}]) == []


def test_questions_per_embedding_run_between_two_readings() -> None:
    assert mean_run_size((10, 12), (40, 102)) == 3.0
    assert mean_run_size(None, (40, 102)) is None  # /metrics did not answer
    assert mean_run_size((10, 12), (10, 12)) is None  # no run in between
    assert mean_run_size((40, 102), (5, 9)) is None  # the embedder was reloaded in between


def test_a_level_cycles_the_questions_in_blocks_that_reach_its_concurrency() -> None:
    questions = [f"q{n}" for n in range(5)]
    blocks = level_blocks(questions, requests=23, block=4, concurrency=1)
    assert [len(b) for b in blocks] == [4] * 5 + [3]  # the asked block: 4 x 1 is not more
    assert [q for b in blocks for q in b] == [questions[n % 5] for n in range(23)]
    wide = level_blocks(questions, requests=300, block=40, concurrency=32)
    assert [len(b) for b in wide] == [128, 128, 44]  # 4 requests per worker at least
    assert level_blocks([], requests=10, block=4, concurrency=1) == []
    assert level_blocks(questions, requests=0, block=4, concurrency=1) == []


def test_the_share_of_hits_scored_with_a_kept_vector_between_two_readings() -> None:
    counters = {
        "holdfast_hit_vectors_kept_total": 190.0,
        "holdfast_hit_vectors_fetched_total": 30.0,
        "holdfast_query_embedding_runs_total": 4.0,
        "holdfast_query_embeddings_total": 9.0,
    }
    assert hit_vectors(counters) == (190.0, 30.0)
    assert embedding_runs(counters) == (4.0, 9.0)
    assert hit_vectors({}) is None  # a gateway that keeps no vectors reports none
    assert kept_share((10, 10), hit_vectors(counters)) == 0.9  # 180 kept, 20 fetched
    assert kept_share(None, (1, 1)) is None
    assert kept_share((5, 5), (5, 5)) is None  # no hit in between
    assert kept_share((50, 50), (3, 1)) is None  # the gateway restarted in between


NAMED_THREAD = (
    "import threading, time\n"
    "threading.Thread(target=time.sleep, args=(60,), name='presidio_0', daemon=True).start()\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_the_gateways_threads_are_named_from_a_py_spy_dump() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", NAMED_THREAD], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        names = python_thread_names(child.pid)
    finally:
        child.kill()
        child.wait()
    assert sorted(names.values()) == ["MainThread", "presidio_0"]
    assert python_thread_names(2**22 + 7) == {}  # no such process: no names, no error


def test_a_threads_cpu_is_charged_to_its_role_and_unnamed_threads_are_native() -> None:
    """Two live threads spin 0.2 s each during the step (a thread is read while it lives, as the
    gateway's are); only one has a name."""
    go, release = threading.Event(), threading.Event()
    spun = threading.Semaphore(0)
    native_ids: dict[str, int] = {}

    def spin(role: str) -> None:
        native_ids[role] = threading.get_native_id()
        go.wait()
        end = time.thread_time() + 0.2
        while time.thread_time() < end:
            pass
        spun.release()
        release.wait()

    workers = [threading.Thread(target=spin, args=(r,), name=r) for r in ("presidio_1", "other")]
    for w in workers:
        w.start()
    meter = ThreadMeter(os.getpid())

    def step() -> None:
        go.set()
        for _ in workers:
            spun.acquire()

    try:
        meter.charge(step)
    finally:
        release.set()
        for w in workers:
            w.join()
    meter.names = {native_ids["presidio_1"]: "presidio_1"}  # as py-spy names the live threads
    by_role = meter.ms_per_request(10)
    assert 15 <= by_role["PII pool"] <= 100  # 0.2 s over 10 requests, in ms
    assert 15 <= by_role[NATIVE_THREADS] <= 100
    assert ThreadMeter(os.getpid()).ms_per_request(10) == {}  # never named: no breakdown
    assert thread_role("AnyIO worker thread") == "request threads"
    assert thread_role("Thread-7") == "other Python"


def test_the_thread_table_lists_the_roles_any_level_measured() -> None:
    levels = [
        {"concurrency": 1, "gateway_cpu_ms_by_thread": {"event loop": 1.5, "PII pool": 0.4}},
        {"concurrency": 8, "gateway_cpu_ms_by_thread": {"event loop": 1.2}},
    ]
    table = thread_table(levels)
    assert table[-3:] == ["| --- | --- | --- |", "| 1 | 1.5 | 0.4 |", "| 8 | 1.2 | - |"]
    assert table[-4] == "| conc. | event loop | PII pool |"
    assert thread_table([{"concurrency": 1}]) == []
