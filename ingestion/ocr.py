"""OCR with Debian's tesseract (via pytesseract); no model is downloaded."""

from __future__ import annotations

from typing import Any

from services.errors import BackendUnavailableError, InvalidRequestError


class OcrUnavailableError(BackendUnavailableError):
    code, title = "ocr_unavailable", "OCR (tesseract) is unavailable"


def ocr_image(image: Any, *, language: str = "eng", timeout_s: float = 120.0) -> str:
    """Text of a PIL image. Raises if tesseract is missing or runs past ``timeout_s``."""
    import pytesseract

    try:
        return str(pytesseract.image_to_string(image, lang=language, timeout=timeout_s))
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrUnavailableError(
            "tesseract is not installed (scripts/install-ocr.sh installs it)"
        ) from exc
    except RuntimeError as exc:  # pytesseract's timeout
        raise InvalidRequestError(f"OCR took longer than {timeout_s:.0f} s") from exc
