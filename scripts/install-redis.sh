#!/usr/bin/env bash
# Redis server (Debian's) for rate limits shared across gateway replicas (limits.storage_url) and
# their tests; the tests start their own throwaway redis-server under /tmp, so the service the
# package may enable is not used. Idempotent: does nothing when redis-server is already there.
# Needs root (or sudo) to install.
set -euo pipefail

if command -v redis-server >/dev/null || [[ -x /usr/bin/redis-server ]]; then
  exit 0
fi
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --for install-redis redis-server
