"""A network namespace with only loopback: what the offline install tests run the playbook in,
so that nothing it does can reach a network."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def run(
    argv: list[str], timeout: float = 900, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


class Namespace:
    """A network namespace with only loopback up, held open by one sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            start_new_session=True,
        )
        # Popen returns before unshare has switched namespaces: wait until the holder sits in
        # its own namespace and has exec'd sleep (so loopback is up), or nsenter would join ours.
        deadline = time.monotonic() + 30
        ours = os.readlink("/proc/self/ns/net")
        while time.monotonic() < deadline:
            try:
                theirs = os.readlink(f"/proc/{self.holder.pid}/ns/net")
                comm = Path(f"/proc/{self.holder.pid}/comm").read_text().strip()
            except OSError:
                theirs, comm = ours, ""
            if theirs != ours and comm == "sleep":
                return
            time.sleep(0.05)
        raise AssertionError("the loopback-only namespace did not come up")

    def run(self, argv: list[str], timeout: float = 1800, **kwargs: object):  # type: ignore[no-untyped-def]
        enter = ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--"]
        return run([*enter, *argv], timeout, **kwargs)

    def close(self) -> None:
        os.killpg(self.holder.pid, signal.SIGTERM)
        self.holder.wait(timeout=10)
