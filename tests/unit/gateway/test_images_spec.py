"""The pure parts of the image build: the runtime subset of the lock, the APT sources read from
the machine, the Debian package list, the labels, the mmdebstrap call and the archive layout."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from gateway.images import oci, rootfs, spec

pytestmark = pytest.mark.unit

ENV = {
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}

REQUIRES = {
    "fastapi": ["starlette>=0.40", "pydantic>=2", 'email-validator>=2; extra == "all"'],
    "starlette": ["anyio>=3"],
    "pydantic": ["typing-extensions"],
    "anyio": ["idna", 'exceptiongroup; python_version < "3.11"'],
    "redis": ['async-timeout>=4.0.3; python_full_version < "3.11.3"'],
    "uvicorn": ["click", 'uvloop; extra == "standard" and sys_platform != "win32"'],
}


def closure(roots: list[str], env: dict[str, str] = ENV) -> set[str]:
    return spec.runtime_closure(roots, lambda name: REQUIRES.get(name, []), env)


def test_runtime_closure_follows_dependencies_but_not_unrequested_extras() -> None:
    found = closure(["fastapi==0.115", "pytest>=8; extra == 'dev'"])
    assert found == {"fastapi", "starlette", "pydantic", "typing-extensions", "anyio", "idna"}


def test_runtime_closure_evaluates_markers_for_the_images_python_not_ours() -> None:
    assert "async-timeout" in closure(["redis"])  # Debian's 3.11.2 needs it
    assert "async-timeout" not in closure(["redis"], {**ENV, "python_full_version": "3.11.7"})


def test_runtime_closure_follows_an_extra_a_requirement_names() -> None:
    assert closure(["uvicorn[standard]"]) == {"uvicorn", "click", "uvloop"}
    assert closure(["uvicorn"]) == {"uvicorn", "click"}


def test_apt_sources_come_from_deb822_and_one_line_files_without_options() -> None:
    deb822 = (
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    one_line = "deb [signed-by=/k.gpg] http://sec.example/debian-security bookworm-security main\n"
    assert spec.apt_sources({"debian.sources": deb822, "sources.list": one_line}) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://sec.example/debian-security bookworm-security main",
    ]


def test_installed_debs_lists_only_installed_packages_sorted() -> None:
    status = (
        "Package: python3.11\nStatus: install ok installed\nVersion: 3.11.2-6\n"
        "Architecture: amd64\nDescription: x\n more\n\n"
        "Package: bash\nStatus: purge ok not-installed\nArchitecture: amd64\n\n"
        "Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\nArchitecture: amd64\n"
    )
    found = spec.installed_debs(status)
    assert [p.name for p in found] == ["dash", "python3.11"]
    assert found[1].purl == "pkg:deb/debian/python3.11@3.11.2-6?arch=amd64"


def test_labels_carry_the_oci_keys_with_the_commit_and_its_time() -> None:
    config = spec.ImageConfig(entrypoint=("/x",), licenses="MIT", title="t")
    found = spec.labels(config, version="0.1.0", revision="abc", source="src", epoch=0)
    assert found["org.opencontainers.image.version"] == "0.1.0"
    assert found["org.opencontainers.image.revision"] == "abc"
    assert found["org.opencontainers.image.licenses"] == "MIT"
    assert found["org.opencontainers.image.source"] == "src"
    assert found["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z"
    assert list(found) == sorted(found)


def test_mmdebstrap_runs_in_root_mode_with_the_cache_and_purges_in_rounds(tmp_path: Path) -> None:
    cmd = rootfs.mmdebstrap_command(
        tmp_path / "root", ["deb http://m/debian bookworm main"], tmp_path
    )
    assert cmd[:3] == ["mmdebstrap", "--mode=root", "--variant=essential"]
    assert cmd[-3:] == ["bookworm", str(tmp_path / "root"), "deb http://m/debian bookworm main"]
    assert f"--setup-hook=sync-in {tmp_path} /var/cache/apt/archives/" in cmd
    purges = [c for c in cmd if "dpkg --purge" in c]
    assert len(purges) == len(rootfs.PURGE)
    assert " bash " in purges[-1] and "diffutils" in purges[-1]  # dpkg needs diff: last round
    assert any(f"{spec.USER}:x:{spec.UID}:{spec.UID}:" in c for c in cmd)


def test_an_archive_holds_one_image_sorted_and_dated_the_same_every_time(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def blob(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return f"sha256:{digest}"

    config, layer, other = blob(b"{}"), blob(b"layer"), blob(b"other image")
    manifest = json.dumps({"config": {"digest": config}, "layers": [{"digest": layer}]})
    digest = blob(manifest.encode())
    ref = "org.opencontainers.image.ref.name"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {"digest": digest, "size": len(manifest), "annotations": {ref: "img"}},
            {"digest": other, "size": 1, "annotations": {ref: "another"}},
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    first, second = tmp_path / "a.tar", tmp_path / "b.tar"
    oci.write_archive(layout, "img", "0.1.0", first, 1000)
    oci.write_archive(layout, "img", "0.1.0", second, 1000)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert names == sorted(names)
        assert {m.mtime for m in tar.getmembers()} == {1000}
        assert f"blobs/sha256/{other.split(':')[1]}" not in names
        assert f"blobs/sha256/{layer.split(':')[1]}" in names
        archived = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert archived["manifests"][0]["annotations"] == {ref: "0.1.0"}


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        # the CI run that died in its final cleanup: nothing but the closing line
        (
            "I: cleaning package lists and apt cache...\nE: mmdebstrap failed to run\n",
            None,
        ),
        (
            "E: Unable to locate package python3.12\nE: apt-get install failed\n"
            "E: mmdebstrap failed to run\n",
            "E: Unable to locate package python3.12 | E: apt-get install failed",
        ),
        ("W: Some index files failed to download\nE: mmdebstrap failed to run\n",
         "W: Some index files failed to download"),
    ],
)  # fmt: skip
def test_a_failed_mmdebstrap_run_is_told_by_what_it_said(log: str, reason: str | None) -> None:
    assert rootfs.failure_reason(log) == reason


FAKE_MMDEBSTRAP = """#!/bin/sh
# a stand-in that fails its first run as scripted in $FAKE_FIRST_RUN, then succeeds
target=""
for arg; do case "$arg" in "$FAKE_TARGET") target="$arg" ;; esac; done
echo run >>"$FAKE_COUNT"
if [ "$(wc -l <"$FAKE_COUNT")" -eq 1 ]; then
    mkdir -p "$target/var" && printf '%b' "$FAKE_FIRST_RUN"
    exit 1
fi
[ -e "$target" ] && { echo "E: $target exists"; exit 1; }
mkdir -p "$target"
"""


def fake_mmdebstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_run: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mmdebstrap").write_text(FAKE_MMDEBSTRAP)
    (bin_dir / "mmdebstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("HOLDFAST_APT_SOURCES", "deb http://mirror.invalid/debian bookworm main")
    monkeypatch.setenv("FAKE_TARGET", str(tmp_path / "rootfs"))
    monkeypatch.setenv("FAKE_COUNT", str(tmp_path / "count"))
    monkeypatch.setenv("FAKE_FIRST_RUN", first_run)
    return tmp_path / "count"


def test_a_silent_mmdebstrap_failure_is_tried_once_more_from_an_empty_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = fake_mmdebstrap(
        tmp_path, monkeypatch, "I: cleaning...\\nE: mmdebstrap failed to run\\n"
    )
    rootfs.build_rootfs(tmp_path / "rootfs", tmp_path / "cache", 0, tmp_path / "rootfs.log")
    assert len(count.read_text().splitlines()) == 2
    assert (tmp_path / "rootfs").is_dir() and not (tmp_path / "rootfs" / "var").exists()


def test_a_named_mmdebstrap_error_fails_at_once_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = "E: Unable to locate package python3.12\\nE: mmdebstrap failed to run\\n"
    count = fake_mmdebstrap(tmp_path, monkeypatch, said)
    with pytest.raises(rootfs.RootfsError, match=r"Unable to locate package python3\.12"):
        rootfs.build_rootfs(tmp_path / "rootfs", tmp_path / "cache", 0, tmp_path / "rootfs.log")
    assert len(count.read_text().splitlines()) == 1
