"""A GPU host's model servers from the bundle (issue #17, item 8): with ``llm_backend: vllm`` and
``embeddings_backend: vllm`` the playbook installs vLLM from the CUDA wheels the bundle carries
(``holdfast bundle build --with-vllm``) into a virtualenv of its own, renders both hardened
units, and points the gateway's models.yaml at them.

This machine has no GPU, so the play runs with ``holdfast_service_manager: none`` and
``--skip-tags gpu``: the GPU probes and the start of the units are left out (what ops do to stage
a GPU host before its driver is in); the rest of the bundle, llm and embeddings roles and every
role's configure step run from the real site.yml in a network namespace with only loopback. The
test then imports vLLM from the installed virtualenv, checks the units with ``systemd-analyze
verify`` and reads the rendered models.yaml. The bundle, built straight into the host's bundles
folder (no archive), and the install root are removed at the end; the wheel cache
(~/.cache/holdfast) is kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import PORT_BASE
from tests.integration.netns import Namespace, run
from tests.integration.signing_keys import make_key_pair

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
WORK = Path(tempfile.gettempdir()) / f"holdfast-vllm-host-test-{PORT_BASE}"
VERSION = "0.1.0"
CHAT_NAME = "qwen2.5-7b-instruct"
LLM_PORT = PORT_BASE + 520  # rendered into the units and models.yaml; nothing listens here
EMBED_PORT = PORT_BASE + 521
UNITS = ("holdfast-vllm", "holdfast-embeddings")


@dataclass(frozen=True)
class Staged:
    root: Path
    bundle: Path
    manifest: dict  # type: ignore[type-arg]
    play: str  # the playbook's output
    returncode: int
    seconds: dict[str, float]

    @property
    def prefix(self) -> Path:
        return self.root / "opt/holdfast"

    @property
    def venv(self) -> Path:
        return self.prefix / f"venvs/vllm-{self.manifest['vllm_version']}"

    def unit(self, name: str) -> Path:
        return self.root / f"etc/systemd/system/{name}.service"


def _inventory(root: Path, public_key: Path) -> str:
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    chat_dir = root / "opt/holdfast/models/chat" / CHAT_NAME
    variables = {
        "holdfast_install_root": str(root),
        "holdfast_service_manager": "none",  # write the units, start nothing
        "holdfast_manage_user": False,
        "holdfast_service_user": "root",
        "holdfast_service_group": "root",
        "holdfast_environment": "development",
        "gateway_python": str(python),
        "vllm_python": str(python),
        "bundle_public_key": str(public_key),
        "bundle_copy_archive": False,
        "llm_backend": "vllm",
        "llm_accelerator": "nvidia",
        "llm_vllm_model": CHAT_NAME,
        "llm_vllm_model_dir": str(chat_dir),
        "llm_vllm_port": LLM_PORT,
        "embeddings_backend": "vllm",
        "embeddings_accelerator": "nvidia",
        "embeddings_vllm_port": EMBED_PORT,
    }
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    return json.dumps({"holdfast": {"hosts": {"localhost": host}, "vars": variables}})


def _place_chat_model(root: Path, bundle: Path) -> None:
    """What ops do before the play: put the chat model's Hugging Face folder in the model store.
    No chat model in that format is at hand here, and vLLM never starts (no GPU): the folder holds
    the bundled embedding model's config.json, which is all the preflight reads."""
    folder = root / "opt/holdfast/models/chat" / CHAT_NAME
    folder.mkdir(parents=True, exist_ok=True)
    configs = sorted((bundle / "models").rglob("config.json"))
    assert configs, "the bundle carries no Hugging Face model folder"
    shutil.copyfile(configs[0], folder / "config.json")


@pytest.fixture(scope="module")
def staged() -> Iterator[Staged]:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    keys = make_key_pair(WORK / "vendor")
    root = WORK / "root"
    bundles = root / "opt/holdfast/bundles"
    seconds: dict[str, float] = {}
    started = time.monotonic()
    built = run(
        [
            str(BIN / "holdfast"),
            "bundle",
            "build",
            "--out",
            str(bundles),
            "--with-vllm",
            "--no-archive",
            "--sign-key",
            str(keys.secret),
        ],
        3600,
    )
    seconds["bundle build --with-vllm (no archive)"] = time.monotonic() - started
    assert built.returncode == 0, (built.stdout + built.stderr)[-3000:]
    bundle = bundles / f"holdfast-bundle-{VERSION}"
    _place_chat_model(root, bundle)
    inventory = WORK / "inventory.yml"
    inventory.write_text(_inventory(root, keys.public))  # JSON is YAML
    ns = Namespace()
    try:
        started = time.monotonic()
        play = ns.run(
            [
                str(BIN / "ansible-playbook"),
                "-i",
                str(inventory),
                "site.yml",
                "--tags",
                "bundle,llm,embeddings,configure",
                "--skip-tags",
                "gpu",
            ],
            cwd=bundle / "ansible",
            env={**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"},
        )
        seconds["ansible-playbook (vLLM venv, units, models.yaml)"] = time.monotonic() - started
        manifest = json.loads((bundle / "manifest.json").read_text())
        yield Staged(root, bundle, manifest, play.stdout + play.stderr, play.returncode, seconds)
    finally:
        ns.close()
        shutil.rmtree(WORK, ignore_errors=True)
        print("\n" + "\n".join(f"{s:7.0f} s  {step}" for step, s in seconds.items()))


def test_bundle_carries_the_vllm_wheelhouse_covered_by_its_checksums(staged: Staged) -> None:
    version = staged.manifest["vllm_version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    wheels = [a for a in staged.manifest["artefacts"] if a["path"].startswith("vllm/wheels/")]
    names = {a["name"] for a in wheels}
    assert {"vllm", "torch"} <= names
    assert any(name.startswith("nvidia-") for name in names)
    sums = (staged.bundle / "SHA256SUMS").read_text()
    assert all(f"  {a['path']}\n" in sums for a in wheels)
    requirements = (staged.bundle / "vllm/requirements.bundle.txt").read_text()
    assert f"vllm=={version}" in requirements and "--hash=sha256:" in requirements
    size = sum(a["size"] for a in wheels)
    print(f"\nvllm/: {len(wheels)} wheels, {size / 1e9:.2f} GB")


def test_playbook_installs_vllm_offline(staged: Staged) -> None:
    assert staged.returncode == 0, staged.play[-5000:]
    recap = re.search(r"localhost\s*:\s*((?:\w+=\d+\s*)+)", staged.play)
    assert recap and " failed=0" in f" {recap[1]}", staged.play[-3000:]
    task = r"TASK \[vllm : Install vLLM from the bundle's wheels\][^\n]*\n(\w+): \[localhost\]"
    ran = re.search(task, staged.play)
    assert ran and ran[1] == "changed", staged.play[-5000:]


def test_vllm_imports_from_its_own_virtualenv(staged: Staged) -> None:
    assert staged.returncode == 0, staged.play[-3000:]
    python = staged.venv / "bin/python"
    done = run(
        [str(python), "-c", "import vllm, torch; print(vllm.__version__, torch.__version__)"],
        300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    vllm_version, torch_version = done.stdout.split()[-2:]
    assert vllm_version == staged.manifest["vllm_version"]
    assert "+cu" in torch_version or torch_version[0].isdigit()
    # the gateway's virtualenv stays free of it: the two locks never resolve together
    gateway_venvs = [v for v in (staged.prefix / "venvs").iterdir() if "vllm" not in v.name]
    assert all(not list(v.glob("lib/python*/site-packages/vllm")) for v in gateway_venvs)


def test_units_are_hardened_and_pass_systemd_analyze_verify(staged: Staged) -> None:
    assert staged.returncode == 0, staged.play[-3000:]
    units = [staged.unit(name) for name in UNITS]
    chat, embed = (u.read_text() for u in units)
    for text in (chat, embed):
        assert f"ExecStart={staged.venv}/bin/vllm serve " in text
        for line in (
            "Environment=HF_HUB_OFFLINE=1",
            "Environment=VLLM_NO_USAGE_STATS=1",
            "NoNewPrivileges=true",
            "ProtectSystem=strict",
            "DevicePolicy=closed",
            "DeviceAllow=/dev/nvidiactl rw",
        ):
            assert line in text.splitlines(), line
    assert f"--served-model-name {CHAT_NAME} " in chat and f"--port {LLM_PORT} " in chat
    assert "--runner generate" in chat
    assert "--runner pooling" in embed and f"--port {EMBED_PORT} " in embed
    assert "/models/embeddings/all-MiniLM-L6-v2 " in embed
    done = run(["systemd-analyze", "verify", "--man=no", *map(str, units)])
    assert done.returncode == 0, done.stdout + done.stderr


def test_models_yaml_routes_chat_and_embeddings_to_the_vllm_units(staged: Staged) -> None:
    assert staged.returncode == 0, staged.play[-3000:]
    models = yaml.safe_load((staged.root / "etc/holdfast/models.yaml").read_text())
    by_name = {m["model_name"]: m["litellm_params"] for m in models["model_list"]}
    assert by_name["chat-default"]["model"] == f"hosted_vllm/{CHAT_NAME}"
    assert by_name["chat-default"]["api_base"] == f"http://127.0.0.1:{LLM_PORT}/v1"
    assert by_name["embed-default"]["model"] == "openai/all-MiniLM-L6-v2"
    assert by_name["embed-default"]["api_base"] == f"http://127.0.0.1:{EMBED_PORT}/v1"
    assert all(params["timeout"] > 0 for params in by_name.values())
