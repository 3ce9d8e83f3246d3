#!/usr/bin/env bash
# The Python 3.11 HTML documentation (Debian's python3.11-doc) that the Python-docs eval set
# (evals/python_docs/) is written against, under /usr/share/doc/python3.11/html.
# Idempotent: does nothing when the pages are there. Needs root (or sudo) to install.
set -euo pipefail

if [[ -f /usr/share/doc/python3.11/html/library/functools.html ]]; then
  exit 0
fi
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --for install-python-docs python3.11-doc
