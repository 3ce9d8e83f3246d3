"""One entry point from a validated file to sections, whatever its format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingestion.markdown_sections import Block, ParsedDocument, Section, parse_markdown
from ingestion.ocr import ocr_image
from ingestion.pdf_parser import parse_pdf
from ingestion.unstructured_parser import parse_with_unstructured
from ingestion.validation import Limits
from services.errors import InvalidRequestError


@dataclass(frozen=True, slots=True)
class Parsed:
    document: ParsedDocument
    ocr_pages: int = 0


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("not UTF-8 text") from exc


def _parse_image(path: Path, *, fallback_title: str, max_pixels: int) -> Parsed:
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = max_pixels  # decompression-bomb guard
    try:
        with Image.open(path) as image:
            image.load()
            text = ocr_image(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise InvalidRequestError(f"unreadable image ({type(exc).__name__})") from exc
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    blocks = [Block(text=p, kind="paragraph", page=1) for p in paragraphs]
    return Parsed(ParsedDocument(fallback_title, [Section((), blocks)] if blocks else []), 1)


def parse_file(path: Path, doc_type: str, *, name: str, limits: Limits) -> Parsed:
    """Sections of one file; ``InvalidRequestError`` when the content cannot be read."""
    fallback_title = Path(name).stem
    if doc_type == "markdown":
        return Parsed(parse_markdown(_decode(path), fallback_title=fallback_title))
    if doc_type == "pdf":
        document, ocr_pages = parse_pdf(
            path, fallback_title=fallback_title, max_pages=limits.max_pages
        )
        return Parsed(document, ocr_pages)
    if doc_type == "image":
        return _parse_image(path, fallback_title=fallback_title, max_pixels=50_000_000)
    if doc_type in {"text", "csv", "html", "email"}:
        _decode(path)  # refuse binary junk with a clear reason before the partitioner does
    try:
        return Parsed(parse_with_unstructured(path, doc_type, fallback_title=fallback_title))
    except InvalidRequestError:
        raise
    except Exception as exc:  # partitioners raise anything on a malformed file
        raise InvalidRequestError(f"cannot parse {doc_type} ({type(exc).__name__})") from exc
