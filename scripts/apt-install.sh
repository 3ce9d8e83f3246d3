#!/usr/bin/env bash
# Install Debian packages, only those not installed yet: one `apt-get update`, then one
# `apt-get install --no-install-recommends`; nothing at all (not even the update) when every
# package is there. As root directly, else through sudo; without either it says what to run.
#
# Usage: scripts/apt-install.sh [--for NAME] PACKAGE...
#   --for NAME   the script that asks, named in messages (default: apt-install)
#   PACKAGE...   Debian package names; none is a no-op
# Exit status 0 when every package is installed afterwards, else 1 with the tail of apt's log.
# Callers keep their own fast check (a command on PATH, a file) and pass all their packages in
# one call, so a run updates the package lists at most once.
set -euo pipefail

me="apt-install"
if [[ "${1:-}" == "--for" ]]; then
    me="${2:?--for needs a name}"
    shift 2
fi

missing=()
for pkg in "$@"; do
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "${pkg}" 2>/dev/null)" == "installed" ]] \
        || missing+=("${pkg}")
done
((${#missing[@]} == 0)) && exit 0

command -v apt-get >/dev/null || {
    echo "${me}: no apt-get here; install with the system's package manager: ${missing[*]}" >&2
    exit 1
}
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null || {
        echo "${me}: needs root; please run: apt-get install ${missing[*]}" >&2
        exit 1
    }
    sudo=(sudo)
fi

echo "${me}: installing ${missing[*]} (Debian packages)…"
log="$(mktemp "${TMPDIR:-/tmp}/apt-install.XXXXXX")"
if ! { "${sudo[@]}" apt-get update -qq \
    && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}"; } >"${log}" 2>&1; then
    tail -n 20 "${log}" >&2
    echo "${me}: apt-get could not install ${missing[*]}; full log in ${log}" >&2
    exit 1
fi
rm -f "${log}"
