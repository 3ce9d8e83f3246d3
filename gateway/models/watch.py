"""Reload ``models.yaml`` on SIGHUP and when the file changes, from inside the app's event loop.

The watcher polls the file's (mtime, size, inode) once a second instead of using inotify: editors
and config-management tools replace the file by rename and Kubernetes swaps a ConfigMap's symlink,
which a single-file inotify watch misses; a stat a second is cheap and sees all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from services.errors import HoldfastError

log = logging.getLogger("holdfast.models")
POLL_INTERVAL_S = 1.0


def file_stamp(path: Path) -> tuple[float, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime, st.st_size, st.st_ino)


class ModelFileWatcher:
    """Runs ``reload(trigger)`` in a thread on SIGHUP or a file change; logs, never raises."""

    def __init__(
        self, path: Path, reload: Callable[[str], object], *, interval_s: float = POLL_INTERVAL_S
    ) -> None:
        self._path = path
        self._reload = reload
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._signal_installed = False

    async def _run_reload(self, trigger: str) -> None:
        try:
            await asyncio.to_thread(self._reload, trigger)
        except HoldfastError as exc:  # already logged and audited by the reload
            log.warning("models.yaml not reloaded on %s: %s", trigger, exc)
        except Exception:
            log.exception("models.yaml reload on %s failed unexpectedly", trigger)

    async def _poll(self) -> None:
        stamp = file_stamp(self._path)
        while True:
            await asyncio.sleep(self._interval_s)
            now = file_stamp(self._path)
            if now != stamp and now is not None:
                stamp = now
                await self._run_reload("watch")
            stamp = now

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._poll(), name="models-yaml-watch")
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(
                signal.SIGHUP, lambda: loop.create_task(self._run_reload("sighup"))
            )
            self._signal_installed = True

    async def stop(self) -> None:
        if self._signal_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
