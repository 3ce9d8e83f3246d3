#!/usr/bin/env bash
# PostgreSQL server binaries (Debian's) for the audit log's PostgreSQL backend and its tests; the
# tests start their own throwaway server under /tmp with initdb/pg_ctl, so no cluster is used.
# Idempotent: does nothing when initdb is already there. Needs root (or sudo) to install.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-postgres: need root to apt-get install postgresql" >&2; exit 1; }
  SUDO="sudo"
fi
echo "installing postgresql (Debian package)…"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
