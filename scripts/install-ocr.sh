#!/usr/bin/env bash
# OCR for scanned PDFs and images: Debian's tesseract (English) and poppler's pdftoppm.
# Idempotent: does nothing when the tools are already there. Needs root (or sudo) to install.
set -euo pipefail

if command -v tesseract >/dev/null && command -v pdftoppm >/dev/null \
  && tesseract --list-langs 2>/dev/null | grep -qx eng; then
  exit 0
fi
bash "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh" --for install-ocr \
  tesseract-ocr tesseract-ocr-eng poppler-utils
