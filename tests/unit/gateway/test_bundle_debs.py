"""The bundle's Debian packages: what is read from apt's output, the SBOM's package URLs, and the
refusal to resolve for a release the build machine does not run (apt itself: integration test)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.bundle import debs
from gateway.bundle.records import Artefact, Manifest
from gateway.bundle.sbom import add_artefacts, deb_purl

pytestmark = pytest.mark.unit

SIMULATED = """\
NOTE: This is only a simulation!
Inst gcc-12-base [12.2.0-14] (12.2.0-14+deb12u1 Debian:12.15/oldstable [amd64])
Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64]) []
Inst tesseract-ocr-eng (1:4.1.0-2 local-deb [all])
Conf libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [amd64])
"""


def tesseract(version: str = "5.3.0-2") -> Artefact:
    return Artefact(
        path=f"debs/tesseract-ocr_{version.split(':')[-1]}_amd64.deb",
        kind="deb",
        name="tesseract-ocr",
        version=version,
        sha256="b" * 64,
        size=2,
    )


def test_simulated_install_lines_give_name_version_and_architecture() -> None:
    assert [(m[1], m[2], m[3]) for m in debs._INST.finditer(SIMULATED)] == [
        ("gcc-12-base", "12.2.0-14+deb12u1", "amd64"),
        ("libc6", "2.36-9+deb12u14", "amd64"),
        ("tesseract-ocr-eng", "1:4.1.0-2", "all"),
    ]


def test_index_paragraphs_are_read_field_by_field() -> None:
    text = "Package: a\nVersion: 1\nDescription: x\n more\n\nPackage: b\nSHA256: ff\n"
    assert list(debs.stanzas(text)) == [
        {"Package": "a", "Version": "1", "Description": "x"},
        {"Package": "b", "SHA256": "ff"},
    ]


def test_apt_names_a_download_with_the_epoch_the_pool_file_has_not() -> None:
    package = debs.DebPackage(
        "tesseract-ocr-eng", "1:4.1.0-2", "all", "tesseract-ocr-eng_4.1.0-2_all.deb", "c" * 64, 1
    )
    assert package.download_name == "tesseract-ocr-eng_1%3a4.1.0-2_all.deb"
    assert package.pin == "tesseract-ocr-eng:all=1:4.1.0-2"


def test_debian_packages_enter_the_sbom_with_hash_and_package_url() -> None:
    sbom: dict[str, object] = {"components": []}
    add_artefacts(sbom, [tesseract()], "debian/bookworm/amd64")
    [component] = sbom["components"]  # type: ignore[misc]
    assert component["type"] == "library"
    assert component["hashes"] == [{"alg": "SHA-256", "content": "b" * 64}]
    assert component["purl"] == (
        "pkg:deb/debian/tesseract-ocr@5.3.0-2?arch=amd64&distro=debian-bookworm"
    )


def test_an_epoch_is_percent_encoded_in_the_package_url() -> None:
    assert "@1%3A4.1.0-2?" in deb_purl(tesseract("1:4.1.0-2"), "debian/bookworm/amd64")


def test_the_manifest_names_the_release_its_debs_are_for() -> None:
    manifest = Manifest(
        holdfast_version="0.1.0",
        created="2026-01-01T00:00:00+00:00",
        python_version="3.11",
        platform="manylinux_2_28_x86_64",
        deb_target="debian/bookworm/amd64",
        artefacts=[tesseract()],
    )
    again = Manifest.model_validate_json(manifest.model_dump_json())
    assert again.deb_target == "debian/bookworm/amd64"
    assert again.artefacts[0].kind == "deb"
    old = Manifest.model_validate_json(manifest.model_dump_json(exclude={"deb_target"}))
    assert old.deb_target == ""  # a bundle from before carries none


def test_a_build_machine_of_another_release_is_refused(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=ubuntu\nVERSION_CODENAME="noble"\n')
    with pytest.raises(debs.DebError, match=r"runs ubuntu/noble/.*--no-ocr"):
        debs.check_build_machine(debs.DebTarget(), os_release)


def test_the_flat_repository_index_points_at_the_files_beside_it() -> None:
    record = debs.DebPackage("libx", "1.0-1", "amd64", "libx_1.0-1_amd64.deb", "d" * 64, 3)
    block = "Package: libx\nVersion: 1.0-1\nFilename: pool/main/libx/libx_1.0-1_amd64.deb\nSize: 3"
    other = debs.DebPackage("liba", "2", "all", "liba_2_all.deb", "e" * 64, 4)
    index = debs.packages_index(
        [(record, block), (other, "Package: liba\nFilename: x/liba_2_all.deb")]
    )
    assert index == (
        "Package: liba\nFilename: ./liba_2_all.deb\n\n"
        "Package: libx\nVersion: 1.0-1\nFilename: ./libx_1.0-1_amd64.deb\nSize: 3\n"
    )


def test_hosts_install_from_the_index_with_no_other_package_source() -> None:
    argv = debs.install_argv(Path("/b/debs/Packages"), "--simulate")
    assert argv[:2] == ["apt-get", "install"]
    assert "Dir::Etc::SourceList=/dev/null" in argv and "Dir::Etc::SourceParts=/dev/null" in argv
    assert argv[argv.index("--with-source") + 1] == "/b/debs/Packages"


def test_ocr_languages_name_their_tesseract_data_packages() -> None:
    assert debs.ocr_packages() == debs.OCR_PACKAGES
    assert debs.ocr_packages(["eng", "deu", "eng", "chi-sim"]) == (
        "tesseract-ocr",
        "tesseract-ocr-eng",
        "tesseract-ocr-deu",
        "tesseract-ocr-chi-sim",
        "poppler-utils",
    )
    with pytest.raises(debs.DebError):
        debs.ocr_packages(["english; rm"])


def test_the_ansible_role_runs_the_install_command_the_build_proved() -> None:
    role_vars = Path(__file__).resolve().parents[3] / "ansible/roles/gateway/vars/main.yml"
    argv = yaml.safe_load(role_vars.read_text())["gateway_ocr_apt"]
    index = "{{ holdfast_bundle_dir }}/debs/Packages"
    assert argv == debs.install_argv(Path(index))


def test_an_unsatisfiable_dependency_is_named_in_the_error() -> None:
    apt_output = (
        "echo ' tesseract-ocr : Depends: libtesseract5 (= 5.3.0-2) but it is not installable';"
        "echo 'E: Unable to correct problems, you have held broken packages.' >&2; exit 100"
    )
    with pytest.raises(debs.DebError) as raised:
        debs._apt("closure", ["sh", "-c", apt_output])
    assert str(raised.value) == (
        "closure: `sh -c` failed: tesseract-ocr : Depends: libtesseract5 (= 5.3.0-2) but it is "
        "not installable (E: Unable to correct problems, you have held broken packages.)"
    )
