#!/usr/bin/env bash
# OCR for scanned PDFs and images: Debian's tesseract (English) and poppler's pdftoppm.
# Idempotent: does nothing when the tools are already there. Needs root (or sudo) to install.
set -euo pipefail

if command -v tesseract >/dev/null && command -v pdftoppm >/dev/null \
  && tesseract --list-langs 2>/dev/null | grep -qx eng; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-ocr: need root to apt-get install tesseract-ocr" >&2; exit 1; }
  SUDO="sudo"
fi
echo "installing tesseract-ocr, tesseract-ocr-eng, poppler-utils (Debian packages)…"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  tesseract-ocr tesseract-ocr-eng poppler-utils >/dev/null
