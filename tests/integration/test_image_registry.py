"""The bundle's images into a customer's registry, for real: a Distribution registry (built from
its Go sources by scripts/install-services.sh) on 127.0.0.1, plain HTTP; four small images made
with umoci by the same code as `holdfast images build` (one small layer each, not the real root
filesystems: the copy, not the build, is under test here); a bundle folder indexed by the bundle
build's own images step, checked by `holdfast bundle verify`; then the Ansible kubernetes role,
run by ansible-playbook with `--tags images,configure`: skopeo copies each archive in, the role
renders the values file that pins every image by digest and runs `helm template` of the bundle's
chart with it (no cluster: the helm install is the run phase). The registry must serve exactly the
digests the manifest records, the chart must render with them in production mode, a second run
(and a check-mode run) must change nothing, and verify must name a corrupted layer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.bundle import build
from gateway.bundle.checksums import format_sums, sha256_file
from gateway.bundle.records import MANIFEST_NAME, SUMS_NAME, Manifest
from gateway.images import oci
from gateway.images.spec import ImageConfig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PORT = int(os.environ.get("HOLDFAST_TEST_PORT_BASE", "28100")) + 850  # 28950 by default
REGISTRY = f"127.0.0.1:{PORT}/holdfast"
EPOCH = 1_764_806_400
# name -> tag, as `holdfast images build` tags them (gateway and models: the holdfast version)
IMAGES = {
    "holdfast-gateway": "0.1.0",
    "holdfast-models": "0.1.0",
    "holdfast-weaviate": "1.37.15",
    "holdfast-ollama": "0.12.6",
}
TIMINGS: list[tuple[str, float]] = []


@pytest.fixture(scope="module", autouse=True)
def report_timings() -> Iterator[None]:
    """The slow steps' seconds, printed once the module's tests are done (``pytest -s``)."""
    yield
    for label, seconds in TIMINGS:
        print(f"{label}: {seconds:.1f} s")


def _tools() -> None:
    """skopeo and umoci from Debian, the registry from its Go sources (cached: seconds)."""
    apt = REPO / "scripts" / "apt-install.sh"
    subprocess.run(
        ["bash", str(apt), "--for", "test_image_registry", "skopeo", "umoci"], check=True
    )
    if not (BIN / "registry").is_file():
        subprocess.run(
            ["bash", str(REPO / "scripts" / "install-services.sh"), str(BIN)], check=True
        )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    started = time.monotonic()
    _tools()
    root = tmp_path_factory.mktemp("registry")
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{PORT}"},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    log = (root / "registry.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "registry"), "serve", str(root / "config.yml")], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"registry did not start: {(root / 'registry.log').read_text()[-500:]}")
            time.sleep(0.2)
        TIMINGS.append(("tools + registry up", time.monotonic() - started))
        yield REGISTRY
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _images_build_output(out: Path) -> Path:
    """What `holdfast images build --out out` leaves (images.json, one .oci.tar per image), made
    by the same umoci calls and archive writer; one small layer per image."""
    layout = out / ".work" / "oci"
    oci.new_image(layout, "base", EPOCH)
    entries = []
    for name, tag in IMAGES.items():
        layer = out / ".work" / f"layer-{name}"
        (layer / "usr/share/holdfast").mkdir(parents=True)
        (layer / "usr/share/holdfast" / "image.txt").write_text(f"{name} {tag}\n")
        oci.insert(layout, "base", layer, "/", EPOCH, new_tag=name)
        config = ImageConfig(entrypoint=("/bin/true",), title=name, version=tag)
        oci.configure(
            layout, name, config, {"org.opencontainers.image.title": name}, EPOCH, "10001"
        )
        archive = out / f"{name}.oci.tar"
        oci.write_archive(layout, name, f"{name}:{tag}", archive, EPOCH)
        digest = str(oci.manifest_descriptor(layout, name)["digest"])
        size, layers = oci.image_size(layout, name)
        entries.append(
            {
                "name": name,
                "tag": tag,
                "digest": digest,
                "archive": archive.name,
                "archive_sha256": sha256_file(archive),
                "size_bytes": size,
                "layers": layers,
            }
        )
    (out / "images.json").write_text(json.dumps({"images": entries}, indent=2))
    shutil.rmtree(out / ".work")
    return out


def _bundle(root: Path, images_dir: Path) -> Path:
    """A bundle folder with the images step of `holdfast bundle build` (the other steps need
    wheels, models and binaries, which this test is not about), indexed the same way."""
    folder = root / "holdfast-bundle-0.1.0"
    collector = build._Collector(folder)
    opts = build.BuildOptions(
        out=root,
        repo_root=REPO,
        wheel_cache=root,
        weaviate_binary=root,
        ollama_binary=root,
        helm_binary=root,
        images_dir=images_dir,
    )
    build._images(collector, opts, lambda _s, _d: None)
    manifest = Manifest(
        holdfast_version="0.1.0",
        created="2026-12-04T00:00:00+00:00",
        python_version="3.11",
        platform="manylinux_2_28_x86_64",
        artefacts=collector.artefacts,
        images=collector.images,
    )
    (folder / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=1))
    sums = [(a.path, a.sha256) for a in manifest.artefacts]
    sums.append((MANIFEST_NAME, sha256_file(folder / MANIFEST_NAME)))
    (folder / SUMS_NAME).write_text(format_sums(sums))
    return folder


@dataclass(frozen=True)
class Play:
    folder: Path
    bundle: Path
    manifest: Manifest
    values_file: Path

    def run(self, *extra: str, expect_failure: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "play.yml",
            "--tags",
            "images,configure",
        ]
        env = {**os.environ, "ANSIBLE_CONFIG": str(self.folder / "ansible.cfg")}
        env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
        started = time.monotonic()
        done = subprocess.run(
            [*argv, "-e", "@vars.json", *extra],
            cwd=self.folder,
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )
        label = " ".join(e for e in extra if "password" not in e)
        TIMINGS.append(
            (f"ansible-playbook --tags images,configure {label}", time.monotonic() - started)
        )
        assert (done.returncode != 0) == expect_failure, done.stdout[-3000:] + done.stderr[-2000:]
        return done


def _changed(output: str) -> int:
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert match, output[-2000:]
    return int(match[1])


@pytest.fixture(scope="module")
def play(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Play:
    started = time.monotonic()
    root = tmp_path_factory.mktemp("bundle")
    images_dir = _images_build_output(root / "images-out")
    bundle = _bundle(root, images_dir)
    TIMINGS.append(("4 images (umoci) + bundle folder", time.monotonic() - started))
    verify = subprocess.run(
        [str(BIN / "holdfast"), "bundle", "verify", "--allow-unsigned", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    subprocess.run(
        [str(BIN / "helm"), "package", str(REPO / "helm" / "holdfast"), "-d", str(bundle / "helm")],
        capture_output=True,
        check=True,
    )
    [chart] = (bundle / "helm").glob("holdfast-*.tgz")
    folder = root / "play"
    folder.mkdir()
    (folder / "ansible.cfg").write_text(
        f"[defaults]\nroles_path = {REPO / 'ansible' / 'roles'}\nstdout_callback = default\n"
        "interpreter_python = auto_silent\nretry_files_enabled = false\n"
    )
    (folder / "play.yml").write_text(
        "- name: The bundle's images into the registry\n"
        "  hosts: localhost\n  connection: local\n  gather_facts: false\n"
        "  roles:\n    - role: kubernetes\n"
    )
    manifest = Manifest.model_validate_json((bundle / MANIFEST_NAME).read_text())
    values_file = root / "etc" / "helm-images-holdfast.yaml"
    variables = {
        "holdfast_manifest": json.loads((bundle / MANIFEST_NAME).read_text()),
        "holdfast_bundle_dir": str(bundle),
        "holdfast_bundle_version": "0.1.0",
        "holdfast_etc_dir": str(root / "etc"),
        "kubernetes_chart": chart.relative_to(bundle).as_posix(),
        # the admin's own values: production, Ollama; the upstream TEI image is not in the bundle
        "kubernetes_values": {
            "config": {"environment": "production"},
            "llm": {"engine": "ollama"},
            "embeddings": {"device": "cpu", "image": {"cpuDigest": "sha256:" + "7" * 64}},
        },
        "kubernetes_kubeconfig": str(root / "kubeconfig"),
        "kubernetes_image_registry": registry,
        "kubernetes_registry_tls_verify": False,
        "ansible_python_interpreter": sys.executable,
    }
    (folder / "vars.json").write_text(json.dumps(variables))
    return Play(folder, bundle, manifest, values_file)


def _skopeo_inspect(reference: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
        check=False,
    )


def _inspect(reference: str) -> dict[str, object]:
    done = _skopeo_inspect(reference)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_role_copies_every_bundle_image_and_pins_it_by_digest_idempotently(play: Play) -> None:
    for image in play.manifest.images:
        assert _skopeo_inspect(f"{REGISTRY}/{image.name}@{image.digest}").returncode != 0
    # with credentials (the registry has no auth and ignores them), which no output may show
    canary = "pw-canary-5f1c9e"
    creds = [
        "-e",
        "kubernetes_registry_username=ci",
        "-e",
        f"kubernetes_registry_password={canary}",
    ]
    first = play.run(*creds, "-vv")
    assert canary not in first.stdout + first.stderr
    # the copies, the folder, the images values file, the values file (then `helm template` of
    # the bundle's chart with both files, in production mode: registry set, digests everywhere)
    assert _changed(first.stdout) == 4
    assert "TASK [kubernetes : Render the chart with these values" in first.stdout

    for image in play.manifest.images:
        by_digest = _inspect(f"{REGISTRY}/{image.name}@{image.digest}")
        by_tag = _inspect(f"{REGISTRY}/{image.name}:{image.tag}")
        assert by_digest["Digest"] == by_tag["Digest"] == image.digest

    values = yaml.safe_load(play.values_file.read_text())
    assert values["global"]["imageRegistry"] == REGISTRY
    pinned = {
        "holdfast-gateway": values["gateway"]["image"],
        "holdfast-models": values["models"]["image"],
        "holdfast-weaviate": values["weaviate"]["image"],
        "holdfast-ollama": values["llm"]["ollama"]["image"],
    }
    for image in play.manifest.images:
        assert pinned[image.name] == {
            "repository": image.name,
            "tag": image.tag,
            "digest": image.digest,
        }

    # The chart takes the file in production mode (registry set, every image by digest); the
    # upstream TEI image is not in the bundle, so its digest comes from the admin's own values.
    helm = subprocess.run(
        [
            str(BIN / "helm"),
            "template",
            "holdfast",
            str(REPO / "helm" / "holdfast"),
            "--values",
            str(play.values_file),
            "--set",
            "config.environment=production,llm.engine=ollama,embeddings.device=cpu",
            "--set",
            "embeddings.image.cpuDigest=sha256:" + "7" * 64,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert helm.returncode == 0, helm.stderr
    refs = set(re.findall(r"image: (\S+)", helm.stdout))
    for image in play.manifest.images:
        assert f"{REGISTRY}/{image.name}:{image.tag}@{image.digest}" in refs

    before = play.values_file.read_bytes()
    assert _changed(play.run().stdout) == 0
    assert _changed(play.run("--check", "--diff").stdout) == 0
    assert play.values_file.read_bytes() == before


def test_role_reports_a_registry_it_cannot_reach_in_one_line(play: Play) -> None:
    canary = "pw-canary-0b7d2a"
    done = play.run(
        "-e",
        "kubernetes_image_registry=127.0.0.1:9/holdfast",
        "-e",
        "kubernetes_registry_username=ci",
        "-e",
        f"kubernetes_registry_password={canary}",
        "-vv",
        expect_failure=True,
    )
    assert canary not in done.stdout + done.stderr
    line = next(ln for ln in done.stdout.splitlines() if "skopeo could not copy into" in ln)
    assert "127.0.0.1:9/holdfast: holdfast-gateway: " in line
    assert "connection refused" in line.lower()


def test_verify_names_a_corrupted_layer_even_when_the_indexes_were_rewritten(
    play: Play, tmp_path: Path
) -> None:
    bundle = tmp_path / play.bundle.name
    shutil.copytree(play.bundle, bundle)
    image = play.manifest.images[0]
    archive = bundle / image.path
    with tarfile.open(archive) as tar:
        blob = tar.extractfile("blobs/" + image.digest.replace(":", "/"))
        assert blob is not None
        digest = json.loads(blob.read())["layers"][-1]["digest"]
        layer = tar.getmember("blobs/" + digest.replace(":", "/"))
    data = bytearray(archive.read_bytes())
    data[layer.offset_data + layer.size // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    # what someone with write access but no signing key could do: make the indexes agree again
    artefacts = [
        a.model_copy(update={"sha256": sha256_file(bundle / a.path)})
        for a in play.manifest.artefacts
    ]
    manifest = play.manifest.model_copy(update={"artefacts": artefacts})
    (bundle / MANIFEST_NAME).write_text(manifest.model_dump_json(indent=1))
    sums = [(a.path, a.sha256) for a in artefacts]
    sums.append((MANIFEST_NAME, sha256_file(bundle / MANIFEST_NAME)))
    (bundle / SUMS_NAME).write_text(format_sums(sums))
    done = subprocess.run(
        [str(BIN / "holdfast"), "bundle", "verify", "--allow-unsigned", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert done.returncode != 0
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("altered ")]
    assert line.startswith(f"altered {image.path} (image {image.reference}: layer ")
    assert "is altered (its bytes hash to sha256:" in line
