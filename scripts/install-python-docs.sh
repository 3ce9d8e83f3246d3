#!/usr/bin/env bash
# Install the Python 3.11 HTML documentation (Debian package python3.11-doc) that the
# Python-docs eval set (evals/python_docs/) is written against. Idempotent; needs root to install.
set -euo pipefail

DOCS=/usr/share/doc/python3.11/html
if [[ -f "$DOCS/library/functools.html" ]]; then
    echo "python3.11-doc: present ($DOCS)"
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]]; then
    echo "python3.11-doc is missing: run 'sudo apt-get install -y python3.11-doc' (or this script as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends python3.11-doc \
    || { apt-get update && apt-get install -y --no-install-recommends python3.11-doc; }
test -f "$DOCS/library/functools.html"
echo "python3.11-doc: installed ($DOCS)"
