"""The models.yaml watcher and SIGHUP hook, and the registry's swap semantics (no services)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from gateway.models.registry import ModelRegistry
from gateway.models.watch import ModelFileWatcher
from services.errors import InvalidConfigFileError

pytestmark = pytest.mark.unit


async def _wait_for(calls: list[str], n: int) -> None:
    for _ in range(200):
        if len(calls) >= n:
            return
        await asyncio.sleep(0.02)


def test_a_changed_file_and_sighup_each_trigger_one_reload(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("a", encoding="utf-8")
    calls: list[str] = []

    def reload(trigger: str) -> None:
        calls.append(trigger)
        if len(calls) == 1:
            raise InvalidConfigFileError("bad file")  # logged, the watcher keeps running

    async def scenario() -> None:
        watcher = ModelFileWatcher(path, reload, interval_s=0.05)
        watcher.start()
        await asyncio.sleep(0.15)
        assert calls == []  # nothing changed yet
        path.write_text("bb", encoding="utf-8")
        await _wait_for(calls, 1)
        os.kill(os.getpid(), signal.SIGHUP)
        await _wait_for(calls, 2)
        path.write_text("ccc", encoding="utf-8")
        await _wait_for(calls, 3)
        await watcher.stop()

    asyncio.run(scenario())
    assert calls == ["watch", "sighup", "watch"]


def test_swap_publishes_the_new_set_and_a_held_reference_keeps_the_old() -> None:
    old, new = object(), object()
    registry = ModelRegistry(old, builder=object())  # type: ignore[arg-type]
    in_flight = registry.current()
    assert registry.swap(new) is old  # type: ignore[arg-type]
    assert registry.current() is new
    assert in_flight is old
