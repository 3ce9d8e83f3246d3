#!/usr/bin/env bash
# GnuPG for signing the offline bundle (gpg) and checking its signature (gpgv); Debian's packages.
# Idempotent: does nothing when both tools are already there. Needs root (or sudo) to install.
set -euo pipefail

if command -v gpg >/dev/null && command -v gpgv >/dev/null && command -v gpgconf >/dev/null; then
  exit 0
fi
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --for install-gnupg gnupg gpgv
