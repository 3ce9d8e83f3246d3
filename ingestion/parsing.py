"""One entry point from a validated file to sections, whatever its format."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ingestion.csv_rows import rectangular
from ingestion.email_attachments import parse_attachments
from ingestion.markdown_sections import Block, ParsedDocument, Section, parse_markdown
from ingestion.ocr import ocr_image
from ingestion.pdf_parser import parse_pdf
from ingestion.text_decoding import DecodedText, read_text
from ingestion.unstructured_parser import parse_with_unstructured
from ingestion.validation import Limits
from services.errors import InvalidRequestError


@dataclass(frozen=True, slots=True)
class Parsed:
    document: ParsedDocument
    ocr_pages: int = 0


def _needs_utf8_copy(decoded: DecodedText, doc_type: str) -> bool:
    """unstructured reads cp1252 text as cp1250 and its CSV reader fails on UTF-16, so text and
    CSV go to it as UTF-8. An email's parts declare their own charsets: it is copied only when
    its headers are not ASCII bytes (UTF-16/32) or a BOM precedes them. An HTML page goes to the
    HTML parser as it is, which honours the page's meta charset."""
    if doc_type == "html":
        return False
    if doc_type == "email":
        return decoded.bom or not decoded.ascii_compatible
    return not decoded.is_plain_utf8


@contextmanager
def _readable_copy(path: Path, doc_type: str) -> Iterator[Path]:
    """The file, or a UTF-8 copy of it that lives as long as the context (for a CSV, with its
    rows padded to one width). Decoding first also refuses binary junk with a clear reason
    before a partitioner fails on it."""
    decoded = read_text(path)
    padded = _rectangular_csv(decoded.text) if doc_type == "csv" else None
    if padded is None and not _needs_utf8_copy(decoded, doc_type):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="holdfast-utf8-") as folder:
        copy = Path(folder) / f"utf8{path.suffix}"
        copy.write_bytes((decoded.text if padded is None else padded).encode("utf-8"))
        yield copy


def _rectangular_csv(text: str) -> str | None:
    """A CSV's rows padded to one width (``ingestion.csv_rows``), within unstructured's cell
    budget; None when they already have one."""
    from unstructured.partition.utils.config import env_config

    return rectangular(text, max_cells=env_config.CSV_MAX_CELLS)


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
    """Sections of one file; ``InvalidRequestError`` when the content cannot be read. An email's
    attachments follow its body, each under its own name (``ingestion.email_attachments``)."""
    return _parse_contents(path, doc_type, name=name, limits=limits, with_attachments=True)


def _parse_without_attachments(path: Path, doc_type: str, *, name: str, limits: Limits) -> Parsed:
    """How an attachment is parsed: an attached email's own attachments are walked by
    ``ingestion.email_attachments``, which caps how deep they nest."""
    return _parse_contents(path, doc_type, name=name, limits=limits, with_attachments=False)


def _with_attachments(body: Parsed, email_file: Path, limits: Limits) -> Parsed:
    attached = parse_attachments(email_file, parse=_parse_without_attachments, limits=limits)
    sections = [*body.document.sections, *attached.sections]
    return Parsed(
        ParsedDocument(body.document.title, sections), body.ocr_pages + attached.ocr_pages
    )


def _parse_contents(
    path: Path, doc_type: str, *, name: str, limits: Limits, with_attachments: bool
) -> Parsed:
    fallback_title = Path(name).stem
    if doc_type == "markdown":
        return Parsed(parse_markdown(read_text(path).text, fallback_title=fallback_title))
    if doc_type == "pdf":
        document, ocr_pages = parse_pdf(
            path, fallback_title=fallback_title, max_pages=limits.max_pages
        )
        return Parsed(document, ocr_pages)
    if doc_type == "image":
        return _parse_image(path, fallback_title=fallback_title, max_pixels=50_000_000)
    if doc_type in {"text", "csv", "html", "email"}:
        with _readable_copy(path, doc_type) as readable:
            parsed = _parse_with_unstructured(readable, doc_type, fallback_title=fallback_title)
            if doc_type == "email" and with_attachments:
                return _with_attachments(parsed, readable, limits)
            return parsed
    return _parse_with_unstructured(path, doc_type, fallback_title=fallback_title)


def _parse_with_unstructured(path: Path, doc_type: str, *, fallback_title: str) -> Parsed:
    try:
        return Parsed(parse_with_unstructured(path, doc_type, fallback_title=fallback_title))
    except InvalidRequestError:
        raise
    except Exception as exc:  # partitioners raise anything on a malformed file
        raise InvalidRequestError(f"cannot parse {doc_type} ({type(exc).__name__})") from exc
