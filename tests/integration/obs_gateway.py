"""A gateway process of its own on the live stack's Weaviate and Ollama, for observability
tests: its own home (audit database, keys, JSON log file) so every record it writes is ours,
started and restarted exactly as `holdfast up` starts a gateway."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from gateway.local import stack
from gateway.settings import Settings


def gateway_settings(live: Settings, home: Path, port: int, **sections: Any) -> Settings:
    (home / "secrets").mkdir(parents=True, exist_ok=True)
    shutil.copy(live.weaviate_key_file, home / "secrets" / live.weaviate_key_file.name)
    if live.models_path.exists():
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(live.models_path, home / "models.yaml")
    update: dict[str, Any] = {
        "home": home,
        "models_file": None,
        "gateway": live.gateway.model_copy(update={"port": port}),
    }
    for name, values in sections.items():
        update[name] = getattr(live, name).model_copy(update=values)
    return live.model_copy(update=update)


@dataclass
class OwnGateway:
    settings: Settings
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.settings.gateway.base_url

    @property
    def log_file(self) -> Path:
        return self.settings.home / "gateway.log"

    def start(self) -> None:
        spec = stack.gateway_spec(self.settings)
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(spec.argv, env=spec.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(spec.health_url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log_file.read_text()[-3000:]
            time.sleep(0.5)
        raise AssertionError("gateway did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def call(self, method: str, path: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=300.0, **kwargs)
