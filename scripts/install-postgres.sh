#!/usr/bin/env bash
# PostgreSQL server binaries (Debian's) for the audit log's PostgreSQL backend and its tests; the
# tests start their own throwaway server under /tmp with initdb/pg_ctl, so no cluster is used.
# Idempotent: does nothing when initdb is already there. Needs root (or sudo) to install.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --for install-postgres postgresql
