"""The base root filesystem, from Debian packages only (mmdebstrap, no image registry).

Debian 12's ``essential`` variant (no apt) plus Debian's own python3.11 and libstdc++ (Ollama's
one C++ dependency); then the tools no image runs are purged: bash, grep, sed, gzip, tar's
friends, login, util-linux, perl, debconf. What remains for a shell is ``dash`` as /bin/sh and
coreutils (the models image's init container copies with ``cp``), dpkg and its status file (so
image scanners see the packages). Docs, man pages and locales are not unpacked; copyright files
are. Downloaded .debs are kept in a cache folder across builds (apt checks each against the
signed package lists, so a stale or damaged cache costs a download, never a wrong file)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from gateway.images import spec

SUITE = "bookworm"
PACKAGES = ("python3.11", "libstdc++6", "usr-is-merged")
# Essential-set tools (and perl, which usrmerge pulled in) the images do not use, purged after
# the install in three rounds: each round's maintainer scripts still find the tools they call
# (update-rc.d, sed, diff for dpkg itself), so the last round is the one dpkg never runs after.
PURGE = (
    (
        "login", "libpam-modules", "libpam-modules-bin", "libpam-runtime", "util-linux-extra",
        "util-linux", "sysvinit-utils", "hostname", "bsdutils", "ncurses-bin", "findutils",
        "usrmerge", "libfile-find-rule-perl", "libnumber-compare-perl", "libtext-glob-perl",
        "perl", "perl-modules-5.36", "libperl5.36",
    ),
    ("init-system-helpers", "debconf"),
    ("bash", "gzip", "mawk", "sed", "grep", "perl-base", "diffutils"),
)  # fmt: skip
_DPKG_OPTS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
_PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")


class RootfsError(Exception):
    """mmdebstrap failed; the message carries its last lines."""


def unmount_under(path: Path) -> None:
    """Unmount whatever an interrupted mmdebstrap left mounted below ``path`` (its /proc, /sys),
    deepest first, so that removing the folder never reaches into the host's."""
    prefix = str(path.resolve()) + "/"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    points = [m.split()[1] for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def machine_sources(etc_apt: Path = Path("/etc/apt")) -> list[str]:
    """The APT entries this machine is configured with (the mirror is never written down)."""
    override = os.environ.get("HOLDFAST_APT_SOURCES", "").strip()
    if override:
        return [line.strip() for line in override.split(";") if line.strip()]
    texts: dict[str, str] = {}
    candidates = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*"))]
    for path in candidates:
        if path.is_file() and path.name.endswith((".list", ".sources")):
            texts[path.name] = path.read_text(errors="replace")
    return spec.apt_sources(texts)


def mmdebstrap_command(
    target: Path, sources: list[str], cache: Path, *, packages: tuple[str, ...] = PACKAGES
) -> list[str]:
    """The mmdebstrap call (pure): root mode, into a directory, the .deb cache synced in/out."""
    passwd = f"{spec.USER}:x:{spec.UID}:{spec.UID}:Holdfast:{spec.HOLDFAST_HOME}:/usr/sbin/nologin"
    cmd = [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        "--arch=amd64",
        "--format=directory",
        f"--include={','.join(packages)}",
        "--skip=essential/unlink",
    ]
    if MERGED_USR_HOOKS.is_dir():
        cmd.append(f"--hook-dir={MERGED_USR_HOOKS}")
    cmd += [f"--dpkgopt={opt}" for opt in _DPKG_OPTS]
    cmd += [
        '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
        f"--setup-hook=sync-in {cache} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
        # the .debs stay in the cache folder, not in the image (75 MB)
        '--customize-hook=find "$1"/var/cache/apt/archives -mindepth 1 -maxdepth 1'
        " ! -name partial ! -name lock -exec rm -rf {} +",
        *(
            f'--customize-hook=chroot "$1" env {_PATH} dpkg --purge --force-remove-essential'
            f" --force-depends {' '.join(p for p in batch)} >/dev/null 2>&1"
            for batch in PURGE
        ),
        f"--customize-hook=echo '{passwd}' >>\"$1\"/etc/passwd",
        f"--customize-hook=echo '{spec.USER}:x:{spec.UID}:' >>\"$1\"/etc/group",
        # files whose content is a build's own (logs, caches, backups of the dpkg database)
        '--customize-hook=rm -rf "$1"/var/log/* "$1"/var/cache/ldconfig/aux-cache'
        ' "$1"/var/lib/dpkg/*-old "$1"/etc/*- "$1"/var/cache/debconf',
        SUITE,
        str(target),
        *sources,
    ]
    return cmd


GENERIC_FAILURE = "E: mmdebstrap failed to run"


def failure_reason(log_text: str) -> str | None:
    """What mmdebstrap said went wrong: its error and warning lines other than the closing
    generic one, or None when it named nothing (its worker died without a word)."""
    lines = [line.strip() for line in log_text.splitlines()]
    said = [line for line in lines if line.startswith(("E: ", "W: ")) and line != GENERIC_FAILURE]
    return " | ".join(said[-3:]) if said else None


def build_rootfs(target: Path, cache: Path, epoch: int, log: Path, *, attempts: int = 2) -> None:
    """Run mmdebstrap into ``target`` (created); SOURCE_DATE_EPOCH fixes every timestamp it sets.

    A run that fails without naming a reason is tried once more from scratch: a CI run saw
    mmdebstrap's worker die silently during its final apt cleanup, once, not reproduced since;
    a named error (a missing package, a bad source) fails at once."""
    sources = machine_sources()
    if not sources:
        raise RootfsError(
            "no deb entries in /etc/apt/sources.list(.d); set HOLDFAST_APT_SOURCES to"
            " 'deb URI bookworm main' entries separated by ';'"
        )
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "LC_ALL": "C.UTF-8"}
    for attempt in range(1, attempts + 1):
        attempt_log = log if attempt == 1 else log.with_suffix(f".{attempt}.log")
        with attempt_log.open("w") as out:
            done = subprocess.run(
                mmdebstrap_command(target, sources, cache),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
        if done.returncode == 0:
            return
        text = attempt_log.read_text(errors="replace")
        reason = failure_reason(text)
        if reason is not None or attempt == attempts:
            tail = " | ".join(text.strip().splitlines()[-3:])
            raise RootfsError(
                f"mmdebstrap failed with exit code {done.returncode}"
                f" ({reason or 'no reason given'}; last lines: {tail}); full log in {attempt_log}"
            )
        unmount_under(target)
        shutil.rmtree(target, ignore_errors=True)
