"""ProcessSupervisor with real trivial subprocesses: start, health, pid files, safe stop."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.local.processes import ProcessSpec, ProcessSupervisor, StartupError

pytestmark = pytest.mark.unit


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[ProcessSupervisor]:
    sup = ProcessSupervisor(tmp_path / "run", tmp_path / "logs")
    yield sup
    for pid_file in (tmp_path / "run").glob("*.pid"):
        sup.stop(pid_file.stem, timeout_s=2)


def http_server_spec(tmp_path: Path, name: str = "web") -> ProcessSpec:
    port = free_port()
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        health_url=f"http://127.0.0.1:{port}/",
        cwd=tmp_path,
        startup_timeout_s=10,
    )


def test_start_waits_for_health_and_records_a_pid_file(
    supervisor: ProcessSupervisor, tmp_path: Path
) -> None:
    spec = http_server_spec(tmp_path)
    started = supervisor.start(spec)
    assert started.running and started.pid is not None
    record = json.loads((tmp_path / "run" / "web.pid").read_text())
    assert record == {"pid": started.pid, "argv": list(spec.argv)}
    assert supervisor.state("web").running


def test_start_of_a_running_process_keeps_the_same_pid(
    supervisor: ProcessSupervisor, tmp_path: Path
) -> None:
    spec = http_server_spec(tmp_path)
    first = supervisor.start(spec)
    again = supervisor.start(spec)
    assert again.pid == first.pid
    assert again.running


def test_stop_kills_the_process_and_state_shows_not_running(
    supervisor: ProcessSupervisor, tmp_path: Path
) -> None:
    started = supervisor.start(http_server_spec(tmp_path))
    assert supervisor.stop("web", timeout_s=5) is True
    assert not Path(f"/proc/{started.pid}").exists()
    assert supervisor.state("web").running is False
    assert not (tmp_path / "run" / "web.pid").exists()


def test_stop_of_a_name_never_started_returns_false(supervisor: ProcessSupervisor) -> None:
    assert supervisor.stop("never") is False
    assert supervisor.state("never").pid is None


def test_process_that_exits_immediately_raises_startup_error_with_its_log_tail(
    supervisor: ProcessSupervisor,
) -> None:
    spec = ProcessSpec(
        name="crashy",
        argv=[sys.executable, "-c", "print('fatal: bad flag xyz-987', flush=True); exit(3)"],
        health_url=f"http://127.0.0.1:{free_port()}/",
        startup_timeout_s=10,
        hint="check the flags",
    )
    with pytest.raises(StartupError) as info:
        supervisor.start(spec)
    err = info.value
    assert err.component == "crashy"
    assert err.reason == "process exited"
    assert "fatal: bad flag xyz-987" in err.log_tail
    assert err.hint == "check the flags"
    assert supervisor.state("crashy").running is False


def test_recycled_pid_with_another_cmdline_is_not_running_and_never_killed(
    supervisor: ProcessSupervisor, tmp_path: Path
) -> None:
    (tmp_path / "run").mkdir()
    own_pid = os.getpid()
    (tmp_path / "run" / "ghost.pid").write_text(
        json.dumps({"pid": own_pid, "argv": ["/opt/ghost/bin/ghost-server", "--port", "1"]})
    )
    state = supervisor.state("ghost")
    assert (state.pid, state.running) == (own_pid, False)
    assert supervisor.stop("ghost", timeout_s=1) is False
    assert Path(f"/proc/{own_pid}").exists()
    assert not (tmp_path / "run" / "ghost.pid").exists()


def test_a_process_that_never_answers_fails_after_its_timeout_naming_the_last_answer(
    supervisor: ProcessSupervisor,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    spec = ProcessSpec(
        name="mute",
        argv=[sys.executable, "-c", "import time; time.sleep(30)"],
        health_url=url,
        startup_timeout_s=1,
    )
    with pytest.raises(StartupError) as info:
        supervisor.start(spec)
    assert info.value.reason == f"not healthy after 1s (ConnectError on {url})"
