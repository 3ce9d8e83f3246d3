"""The HTTP floor path of the overhead benchmark: its bare ASGI app, the order of three paths in
a block, the floor server's CPU kept out of the benchmark process's, and its report table."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.gateway_overhead import (
    CpuMeter,
    PathRun,
    block_order,
    cpu_table,
    floor_spec,
    floor_table,
    measured_paths,
    process_tree,
    supervised,
)
from benchmarks.http_floor import FloorApp
from gateway.local.processes import (
    ProcessSpec,
    ProcessState,
    ProcessSupervisor,
    StartupError,
    is_alive,
)

pytestmark = pytest.mark.unit


class _Hits:
    """Stands in for the raw path's two calls: the app's HTTP handling is what is tested."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def hits(self, question: str) -> list[dict[str, Any]]:
        self.asked.append(question)
        return [{"text": f"about {question}", "score": 0.5}]


def _call(app: FloorApp, method: str, path: str, body: bytes = b"") -> tuple[int, Any]:
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path}
    asyncio.run(app(scope, receive, send))
    start, payload = sent
    assert dict(start["headers"])[b"content-length"] == str(len(payload["body"])).encode()
    return start["status"], json.loads(payload["body"])


def test_the_floor_answers_a_search_with_the_raw_paths_hits() -> None:
    search = _Hits()
    status, body = _call(FloorApp(search, threads=2), "POST", "/v1/search", b'{"query": "files"}')
    assert status == 200
    assert body == {"results": [{"text": "about files", "score": 0.5}]}
    assert search.asked == ["files"]


def test_the_floor_refuses_a_body_without_a_query_and_an_unknown_path() -> None:
    search = _Hits()
    app = FloorApp(search, threads=2)
    assert _call(app, "POST", "/v1/search", b'{"question": "files"}')[0] == 400
    assert _call(app, "POST", "/v1/search", b"not json")[0] == 400
    assert _call(app, "GET", "/v1/search")[0] == 404
    assert _call(app, "GET", "/healthz") == (200, {"status": "ok"})
    assert search.asked == []


def test_each_path_goes_first_once_in_as_many_blocks_as_there_are_paths() -> None:
    paths = ["raw", "gateway", "floor"]
    orders = [block_order(paths, i) for i in range(6)]
    assert [o[0] for o in orders] == ["raw", "gateway", "floor"] * 2
    assert all(sorted(o) == sorted(paths) for o in orders)
    assert block_order(["raw", "gateway"], 1) == ["gateway", "raw"]


SLEEPS = "import sys; print('up', flush=True); sys.stdin.read()"


def test_a_child_measured_on_its_own_is_left_out_of_its_parents_cpu() -> None:
    """The benchmark starts the floor server as its child; its CPU is the floor's, not the
    HTTP client's."""
    child = subprocess.Popen(
        [sys.executable, "-c", SLEEPS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == "up\n"
        assert child.pid in process_tree(os.getpid())
        assert child.pid not in process_tree(os.getpid(), frozenset({child.pid}))
        assert process_tree(child.pid, frozenset({child.pid})) == [child.pid]
        meter = CpuMeter({"client": os.getpid(), "floor": child.pid})
        run = PathRun(latency_ms=[1.0])
        meter.charge(run, lambda: None)
        assert set(run.cpu_s) == {"client", "floor"}
    finally:
        child.communicate(timeout=10)


def _level(with_floor: bool) -> dict[str, Any]:
    level: dict[str, Any] = {
        "concurrency": 8,
        "raw": {"cpu_ms_per_request": {"client": 6.5, "weaviate": 4.9}},
        "gateway": {"cpu_ms_per_request": {"client": 0.5, "gateway": 8.3, "weaviate": 5.1}},
    }
    if with_floor:
        level["floor"] = {"cpu_ms_per_request": {"client": 0.5, "floor": 6.9, "weaviate": 5.0}}
        level.update(
            floor_ratio_p50=1.14,
            floor_ratio_p99=1.11,
            floor_throughput_ratio=0.92,
            gateway_over_floor_p50=1.19,
            gateway_over_floor_throughput=0.83,
        )
    return level


def test_the_floor_table_reads_the_floor_against_raw_and_the_gateway_against_the_floor() -> None:
    lines = floor_table([_level(True)])
    assert "| 8 | 1.14 | 1.11 | 0.92 | 1.19 | 0.83 |" in lines
    assert floor_table([_level(False)]) == []


def test_the_cpu_table_has_a_floor_row_between_raw_and_gateway() -> None:
    assert measured_paths(_level(True)) == ["raw", "floor", "gateway"]
    assert measured_paths(_level(False)) == ["raw", "gateway"]
    rows = [line for line in cpu_table([_level(True)]) if line.startswith("| 8 |")]
    assert [row.split(" | ")[1] for row in rows] == ["raw", "floor", "gateway"]
    assert "| 8 | floor | 0.5 | 6.9 | - | 5.0 | 12.4 |" in rows[1]


def _supervisor(tmp_path: Path) -> ProcessSupervisor:
    return ProcessSupervisor(tmp_path / "run", tmp_path / "logs")


def _spec(argv: list[str], port: int = 9, **extra: Any) -> ProcessSpec:
    return ProcessSpec(
        name="http-floor",
        argv=argv,
        health_url=f"http://127.0.0.1:{port}/healthz",
        env=dict(os.environ),
        startup_timeout_s=30,
        **extra,
    )


def test_a_floor_server_that_exits_at_start_is_reported_not_waited_for(tmp_path: Path) -> None:
    exits = _spec([sys.executable, "-c", "import sys; print('port taken'); sys.exit(3)"])
    with (
        pytest.raises(StartupError, match="process exited") as raised,
        supervised(_supervisor(tmp_path), exits),
    ):
        pytest.fail("the block ran although the server never came up")
    assert "port taken" in raised.value.log_tail
    assert not _supervisor(tmp_path).state("http-floor").running


def test_the_floor_server_runs_inside_the_block_and_is_stopped_after_it(tmp_path: Path) -> None:
    (tmp_path / "healthz").write_text("ok")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serves = _spec(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        port,
        cwd=tmp_path,
    )
    supervisor = _supervisor(tmp_path)
    with pytest.raises(KeyboardInterrupt), supervised(supervisor, serves) as pid:
        assert supervisor.state("http-floor") == ProcessState("http-floor", pid, True)
        assert os.path.exists(f"/proc/{pid}")
        raise KeyboardInterrupt  # the operator's Ctrl-C in the middle of a level
    assert not supervisor.state("http-floor").running
    assert not is_alive(pid)


def test_the_floor_spec_says_what_to_do_when_its_port_is_taken() -> None:
    spec = floor_spec("bench", 8123, joined=True)
    assert spec.argv[1:] == [
        "-m",
        "benchmarks.http_floor",
        "--group",
        "bench",
        "--port",
        "8123",
        "--joined",
    ]
    assert spec.health_url == "http://127.0.0.1:8123/healthz"
    assert "--floor-port" in spec.hint and "--no-floor" in spec.hint
    assert "--joined" not in floor_spec("bench", 8123, joined=False).argv
