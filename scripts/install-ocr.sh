#!/usr/bin/env bash
# OCR for scanned PDFs and images: Debian's tesseract (English) and poppler's pdftoppm.
# Idempotent: installs only what is missing. Needs root (or sudo) to install.
#
# Usage: scripts/install-ocr.sh [BUNDLE_DIR]
#   no argument   from the machine's configured Debian mirror (scripts/apt-install.sh)
#   BUNDLE_DIR    offline, from an unpacked Holdfast bundle: its debs/ folder is a flat repository
#                 (debs/Packages) and apt reads no other package source, as the Ansible gateway
#                 role does; run `holdfast bundle verify BUNDLE_DIR` first
set -euo pipefail

if [[ -z "${1:-}" ]]; then
  if command -v tesseract >/dev/null && command -v pdftoppm >/dev/null \
    && tesseract --list-langs 2>/dev/null | grep -qx eng; then
    exit 0
  fi
  exec bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --for install-ocr \
    tesseract-ocr tesseract-ocr-eng poppler-utils
fi

index="$(cd "$1" && pwd)/debs/Packages"
[[ -f "${index}" ]] || {
  echo "install-ocr: ${index} not found (a bundle built with --no-ocr carries no packages)" >&2
  exit 1
}
sudo=()
[[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
# The packages the bundle was built to install (manifest.json: deb_packages).
mapfile -t packages < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["deb_packages"]))' "$1/manifest.json")
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install --yes --quiet \
  --no-install-recommends \
  -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null \
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o DPkg::Lock::Timeout=300 \
  --with-source "${index}" "${packages[@]}"
