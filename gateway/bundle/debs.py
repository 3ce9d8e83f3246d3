"""Debian packages in the bundle: OCR for scanned PDFs (tesseract, its English data, poppler's
pdftoppm) and every package they need that a minimal host lacks, for one Debian release and
architecture (default Debian 12 "bookworm", amd64).

apt itself resolves the closure, against a *minimal host*: the packages of ``Priority: required``
and what they depend on (what ``debootstrap --variant=minbase`` installs), written as a dpkg status
file. The packages are fetched with ``apt-get download`` into a cache folder reused across builds;
every file, cached or fresh, must match the SHA-256 of the apt index (which apt verified against
the release's signature), so the cache only saves time. The bundle carries them as a flat
repository (``debs/`` and its ``Packages`` index); hosts run ``apt-get install --with-source
debs/Packages`` with no other package source, so apt installs only what a host lacks. Last, the
closure is proved the same way: a simulated install onto the minimal host from that index alone.

The build machine must run the target release (its apt lists are where versions and digests come
from); it needs apt, not root and no network beyond its configured Debian mirror.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.bundle.checksums import sha256_file

OCR_PACKAGES = ("tesseract-ocr", "tesseract-ocr-eng", "poppler-utils")
INDEX_NAME = "Packages"
_LANGUAGE = re.compile(r"^[a-z]{3}(?:-[a-z]+)?$")  # tesseract's data packages: eng, deu, chi-sim


def ocr_packages(languages: Iterable[str] = ("eng",)) -> tuple[str, ...]:
    """tesseract, the data package of each language (Debian: tesseract-ocr-<code>), pdftoppm."""
    codes = list(dict.fromkeys(languages))
    bad = [code for code in codes if not _LANGUAGE.match(code)]
    if bad or not codes:
        raise DebError(f"OCR languages {bad or codes}: use tesseract's codes, e.g. eng, deu")
    return ("tesseract-ocr", *(f"tesseract-ocr-{code}" for code in codes), "poppler-utils")


DEFAULT_CACHE = Path.home() / ".cache" / "holdfast" / "debs"  # + one folder per target
# apt with no package source and no cache files: only the dpkg status and the .deb files named on
# the command line count, so a resolution cannot reach a mirror or read the machine's lists.
NO_SOURCES = (
    "-o",
    "Dir::Etc::SourceList=/dev/null",
    "-o",
    "Dir::Etc::SourceParts=/dev/null",
    "-o",
    "Dir::Cache::pkgcache=",
    "-o",
    "Dir::Cache::srcpkgcache=",
)
_INST = re.compile(r"^Inst (\S+) (?:\[\S+\] )?\((\S+) .*\[(\S+)\]\)", re.MULTILINE)
_FIELD = re.compile(r"^([A-Za-z0-9-]+):\s*(.*)$")


class DebError(Exception):
    """apt could not resolve, fetch or prove the closure; the message says which package."""


@dataclass(frozen=True, slots=True)
class DebTarget:
    """The Debian release and architecture the hosts run."""

    distribution: str = "debian"
    codename: str = "bookworm"
    architecture: str = "amd64"

    @property
    def label(self) -> str:
        """What the manifest records and the Ansible role compares with the host."""
        return f"{self.distribution}/{self.codename}/{self.architecture}"


@dataclass(frozen=True, slots=True)
class DebPackage:
    """One binary package as the apt index describes it."""

    name: str
    version: str
    architecture: str
    filename: str  # the pool file's base name, e.g. tesseract-ocr_5.3.0-2_amd64.deb
    sha256: str
    size: int

    @property
    def download_name(self) -> str:
        return f"{self.name}_{self.version.replace(':', '%3a')}_{self.architecture}.deb"

    @property
    def pin(self) -> str:
        return f"{self.name}:{self.architecture}={self.version}"


Say = Callable[[str], None]


def _apt(step: str, argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, check=False)
    except FileNotFoundError as exc:
        raise DebError(f"{step}: {argv[0]} not found (the build machine needs apt)") from exc
    if done.returncode != 0:
        output = (done.stdout + "\n" + done.stderr).splitlines()
        errors = [ln for ln in output if ln.startswith("E:")]
        last = (errors or [ln for ln in output if ln.strip()] or ["(no output)"])[-1]
        # apt names the first package it cannot satisfy: "tesseract-ocr : Depends: libtesseract5"
        unmet = [" ".join(ln.split()) for ln in output if re.search(r" : (Pre-)?Depends: ", ln)]
        reason = f"{unmet[0]} ({last})" if unmet else last
        raise DebError(f"{step}: `{' '.join(argv[:2])}` failed: {reason}")
    return done.stdout


def check_build_machine(target: DebTarget, os_release: Path = Path("/etc/os-release")) -> None:
    """The versions and digests come from this machine's apt lists: it must run the target."""
    fields: dict[str, str] = {}
    if os_release.is_file():
        for line in os_release.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                fields[key] = value.strip().strip('"')
    arch = _apt("arch", ["dpkg", "--print-architecture"]).strip() if shutil.which("dpkg") else "?"
    found = f"{fields.get('ID', '?')}/{fields.get('VERSION_CODENAME', '?')}/{arch}"
    if found != target.label:
        raise DebError(
            f"the build machine runs {found}, the bundle's Debian packages are for "
            f"{target.label}: build on {target.label} (or leave OCR out with --no-ocr)"
        )


def stanzas(text: str) -> Iterable[dict[str, str]]:
    """Fields of each deb822 paragraph (continuation lines dropped)."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = _FIELD.match(line)
            if match:
                fields[match[1]] = match[2]
        if fields:
            yield fields


def required_packages() -> list[str]:
    """Names of the ``Priority: required`` packages of the target architecture."""
    names: set[str] = set()
    package = ""
    for line in _apt("minimal host", ["apt-cache", "dumpavail"]).splitlines():
        if line.startswith("Package: "):
            package = line[9:].strip()
        elif line == "Priority: required":
            names.add(package)
    if not names:
        raise DebError("minimal host: apt knows no packages (run `apt-get update`)")
    return sorted(names)


def simulate(packages: Iterable[str], status: Path, *extra: str) -> list[tuple[str, str, str]]:
    """(name, version, architecture) of every package ``apt-get install`` would unpack onto
    the host that ``status`` describes (no recommends)."""
    out = _apt(
        "resolve",
        [
            "apt-get",
            "install",
            "--simulate",
            "--quiet",
            "-o",
            f"Dir::State::status={status}",
            "-o",
            "APT::Install-Recommends=false",
            "-o",
            "APT::Install-Suggests=false",
            *extra,
            *packages,
        ],
    )
    return [(m[1], m[2], m[3]) for m in _INST.finditer(out)]


def show(pins: Iterable[str]) -> list[tuple[DebPackage, str]]:
    """The index record of each ``name:arch=version`` (one per package), raw text too."""
    pins = list(pins)
    if not pins:
        return []
    out = _apt("index", ["apt-cache", "show", "--no-all-versions", *pins])
    records: dict[tuple[str, str], tuple[DebPackage, str]] = {}
    for block in out.strip().split("\n\n"):
        fields = next(iter(stanzas(block)), {})
        try:
            package = DebPackage(
                name=fields["Package"],
                version=fields["Version"],
                architecture=fields["Architecture"],
                filename=Path(fields["Filename"]).name,
                sha256=fields["SHA256"],
                size=int(fields["Size"]),
            )
        except (KeyError, ValueError) as exc:
            raise DebError(f"index: a record of {fields.get('Package', '?')} lacks {exc}") from exc
        records.setdefault((package.name, package.architecture), (package, block))
    return list(records.values())


def minimal_status(folder: Path, say: Say) -> Path:
    """A dpkg status file of the minimal host: Priority: required and their dependencies."""
    empty = folder / "empty.status"
    empty.write_text("")
    say("minimal host: Priority: required and their dependencies")
    base = simulate(required_packages(), empty)
    status = folder / "minimal.status"
    paragraphs = []
    for _package, block in show(f"{n}:{a}={v}" for n, v, a in base):
        lines = block.strip().splitlines()
        paragraphs.append("\n".join([lines[0], "Status: install ok installed", *lines[1:]]))
    status.write_text("\n\n".join(paragraphs) + "\n")
    return status


def fetch(packages: list[DebPackage], cache: Path, download: bool, say: Say) -> dict[str, Path]:
    """Pool file name -> a verified file in ``cache``: kept when it matches the index's SHA-256,
    else (re)downloaded; a file that still does not match fails the build."""
    cache.mkdir(parents=True, exist_ok=True)
    stale = [p for p in packages if not _matches(cache / p.filename, p)]
    if stale and not download:
        raise DebError(f"fetch: {stale[0].filename} is not in {cache} (--no-download)")
    if stale:
        say(f"apt-get download of {len(stale)} packages into {cache}")
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            os.chmod(tmp, 0o755)  # apt's _apt sandbox user writes here when it can
            _apt("fetch", ["apt-get", "download", "--quiet", *(p.pin for p in stale)], Path(tmp))
            for package in stale:
                # apt-get download names a file with the epoch (as %3a); the pool's name has none
                got = Path(tmp) / package.download_name
                if not _matches(got, package):
                    raise DebError(f"fetch: {package.filename} does not match the apt index")
                got.replace(cache / package.filename)
    return {p.filename: cache / p.filename for p in packages}


def _matches(path: Path, package: DebPackage) -> bool:
    return (
        path.is_file()
        and path.stat().st_size == package.size
        and sha256_file(path) == package.sha256
    )


def packages_index(records: Iterable[tuple[DebPackage, str]]) -> str:
    """The ``Packages`` file of a flat repository of these records, each file beside it: what
    ``apt-get install --with-source debs/Packages`` reads on the host (apt checks every file
    against its SHA256 here; SHA256SUMS, which the bundle's signature covers, vouches for this)."""
    paragraphs = []
    for package, block in sorted(records, key=lambda r: (r[0].name, r[0].architecture)):
        lines = [
            f"Filename: ./{package.filename}" if line.startswith("Filename:") else line
            for line in block.strip().splitlines()
        ]
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs) + "\n"


def install_argv(index: Path, *extra: str) -> list[str]:
    """``apt-get install`` from the bundle's flat repository alone: what the Ansible gateway
    role runs (its ``gateway_ocr_apt``, held equal to this by a unit test)."""
    return [
        "apt-get",
        "install",
        "--quiet",
        "--no-install-recommends",
        *NO_SOURCES,
        "-o",
        "DPkg::Lock::Timeout=300",  # wait for another apt run instead of failing
        "--with-source",
        str(index),
        *extra,
    ]


def prove_closure(index: Path, status: Path, names: Iterable[str]) -> list[str]:
    """``apt-get install --simulate`` of ``names`` onto the host ``status`` describes, from the
    flat repository at ``index`` and no other source: passes only when the repository holds every
    package the host lacks. Returns the names apt would install."""
    wanted = list(names)
    argv = install_argv(index, "--simulate", "-o", f"Dir::State::status={status}", *wanted)
    planned = [m[1] for m in _INST.finditer(_apt("closure", argv))]
    missing = set(wanted) - set(planned)
    if missing:
        raise DebError(f"closure: {', '.join(sorted(missing))} would not be installed")
    return planned


@dataclass(frozen=True, slots=True)
class Collected:
    """The packages for the bundle: each record with its verified file, and the index."""

    packages: list[tuple[DebPackage, Path]]
    index: str  # the flat repository's Packages file


def collect(
    cache: Path,
    target: DebTarget,
    packages: Iterable[str] = OCR_PACKAGES,
    *,
    download: bool = True,
    say: Say = lambda _detail: None,
) -> Collected:
    """Resolve, fetch and prove the closure of ``packages`` for a minimal host of ``target``."""
    wanted = list(packages)
    check_build_machine(target)
    with tempfile.TemporaryDirectory() as tmp:
        status = minimal_status(Path(tmp), say)
        say(f"resolving {' '.join(wanted)} for a minimal {target.label} host")
        plan = simulate(wanted, status)
        records = show(f"{n}:{a}={v}" for n, v, a in plan)
        if len(records) != len(plan):
            raise DebError("index: apt-cache show returned fewer records than apt planned")
        files = fetch([record for record, _block in records], cache, download, say)
        index = packages_index(records)
        (Path(tmp) / "Packages").write_text(index)
        say(f"proving the closure of {len(records)} packages (no package source)")
        planned = prove_closure(Path(tmp) / "Packages", status, wanted)
        if sorted(planned) != sorted(r.name for r, _block in records):
            raise DebError("closure: the proof installed other packages than were resolved")
    ordered = sorted((record for record, _block in records), key=lambda r: r.name)
    return Collected([(record, files[record.filename]) for record in ordered], index)
