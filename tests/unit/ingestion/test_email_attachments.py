"""An email's attachments are indexed with the email: a text file, a PDF, a forwarded message
(message/rfc822), each under a section named after it. A bad attachment (unsupported type,
corrupt file) is skipped and logged by its type and suffix, never its name, while the rest index;
at most 20 attachments per email, and attachments nested deeper than 2 levels are not followed.
Real .eml files in tmp_path, validated and parsed as ingestion does."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingestion.markdown_sections import ParsedDocument
from ingestion.parsing import Parsed, parse_file
from ingestion.validation import Limits, validate_file
from tests.corpus_builder.build import scanned_pdf, two_column_pdf

pytestmark = pytest.mark.unit

BODY = "Please see the attached notes."
NOTES = "The penalty clause is five percent of the order value."
FORWARDED = "The board approved the merger with Globex on Monday."


def message(subject: str, body: str) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Alice <alice@example.org>"
    m["To"] = "bob@example.org"
    m["Subject"] = subject
    m.set_content(body)
    return m


def attach_text(m: EmailMessage, name: str, text: str) -> None:
    m.add_attachment(text.encode(), maintype="text", subtype="plain", filename=name)


def parsed(tmp_path: Path, m: EmailMessage, name: str = "mail.eml") -> Parsed:
    path = tmp_path / name
    path.write_bytes(m.as_bytes())
    limits = Limits()
    return parse_file(path, validate_file(path, name, limits), name=name, limits=limits)


def texts_under(document: ParsedDocument, first: str) -> list[str]:
    """The block texts of the sections whose path starts with ``first``."""
    return [b.text for s in document.sections if s.path[:1] == (first,) for b in s.blocks]


def all_text(document: ParsedDocument) -> str:
    return "\n".join(b.text for s in document.sections for b in s.blocks)


def test_a_text_and_a_pdf_attachment_are_indexed_under_their_names(tmp_path: Path) -> None:
    m = message("Contract attached", BODY)
    attach_text(m, "notes.txt", NOTES)
    pdf = tmp_path / "report.pdf"
    two_column_pdf(pdf)
    m.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename="report.pdf")

    document = parsed(tmp_path, m).document

    assert document.title == "Contract attached"
    assert document.sections[0].path == ()
    assert [b.text for b in document.sections[0].blocks] == [BODY]  # no attachment in the body
    assert texts_under(document, "notes.txt") == [NOTES]
    pdf_sections = [s for s in document.sections if s.path[:1] == ("report.pdf",)]
    assert ("report.pdf", "Warehouse capacity") in [s.path for s in pdf_sections]
    pdf_text = " ".join(b.text for s in pdf_sections for b in s.blocks)
    assert "northern warehouse ran at ninety percent" in pdf_text
    assert "southern depot opens a second loading bay" in pdf_text
    assert {b.page for s in pdf_sections for b in s.blocks} == {1, 2}  # page numbers kept


def test_a_forwarded_message_has_its_body_indexed(tmp_path: Path) -> None:
    m = message("Fwd: board", BODY)
    m.add_attachment(message("Board decision", FORWARDED))

    document = parsed(tmp_path, m).document

    assert texts_under(document, "Board decision") == [FORWARDED]


def test_a_scanned_pdf_attachment_counts_its_ocr_pages(tmp_path: Path) -> None:
    m = message("Fax", BODY)
    scan = tmp_path / "fax.pdf"
    scanned_pdf(scan)
    m.add_attachment(scan.read_bytes(), maintype="application", subtype="pdf", filename="fax.pdf")

    result = parsed(tmp_path, m)

    assert result.ocr_pages == 1
    assert "boiler inspection" in " ".join(texts_under(result.document, "fax.pdf")).lower()


def test_unsupported_and_corrupt_attachments_are_skipped_and_the_rest_indexed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = message("Mixed bag", BODY)
    m.add_attachment(
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" * 8,
        maintype="application",
        subtype="octet-stream",
        filename="Thornbury payroll.exe",
    )
    m.add_attachment(
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage\n",
        maintype="application",
        subtype="pdf",
        filename="Thornbury contract.pdf",
    )
    attach_text(m, "notes.txt", NOTES)

    with caplog.at_level(logging.INFO, logger="holdfast.ingest"):
        document = parsed(tmp_path, m).document

    assert texts_under(document, "notes.txt") == [NOTES]
    assert [s.path[:1] for s in document.sections] == [(), ("notes.txt",)]
    skips = [r.getMessage() for r in caplog.records if "attachment skipped" in r.getMessage()]
    assert len(skips) == 2
    assert "application/octet-stream" in skips[0] and ".exe" in skips[0]
    assert "application/pdf" in skips[1] and ".pdf" in skips[1] and "corrupt" in skips[1]
    assert all(r.levelno == logging.INFO for r in caplog.records if "skipped" in r.getMessage())
    assert "Thornbury" not in caplog.text  # a file name can hold PII: only its suffix is logged


def test_only_the_first_twenty_attachments_are_indexed(tmp_path: Path) -> None:
    m = message("Many files", BODY)
    for n in range(25):
        attach_text(m, f"part-{n:02}.txt", f"Attachment number {n} of the batch.")

    document = parsed(tmp_path, m).document

    names = [s.path[0] for s in document.sections if s.path]
    assert names == [f"part-{n:02}.txt" for n in range(20)]


def test_attachments_nested_deeper_than_two_levels_are_not_followed(tmp_path: Path) -> None:
    innermost = message("Level two", "Body of the message forwarded twice.")
    attach_text(innermost, "deep.txt", "Too deep to be indexed.")
    middle = message("Level one", "Body of the message forwarded once.")
    attach_text(middle, "inner.txt", "An attachment of the forwarded message.")
    middle.add_attachment(innermost)
    outer = message("Fwd: Fwd", BODY)
    outer.add_attachment(middle)

    document = parsed(tmp_path, outer).document

    paths = {s.path for s in document.sections}
    assert paths == {
        (),
        ("Level one",),
        ("Level one", "inner.txt"),
        ("Level one", "Level two"),
    }
    text = all_text(document)
    assert "Body of the message forwarded twice." in text
    assert "Too deep" not in text


def test_a_picture_shown_in_the_html_body_is_not_an_attachment(tmp_path: Path) -> None:
    from io import BytesIO

    from PIL import Image, ImageDraw, ImageFont

    logo = Image.new("RGB", (900, 200), "white")
    ImageDraw.Draw(logo).text(
        (20, 60), "ACME LOGISTICS", fill="black", font=ImageFont.load_default(size=60)
    )
    png = BytesIO()
    logo.save(png, format="PNG")
    m = message("Signed", BODY)
    m.add_alternative(f"<p>{BODY}</p><img src='cid:logo'>", subtype="html")
    html_part = m.get_payload()[1]
    html_part.add_related(png.getvalue(), "image", "png", cid="<logo>", filename="logo.png")

    result = parsed(tmp_path, m)

    assert result.ocr_pages == 0  # a signature logo is not read by OCR as an attachment
    assert "ACME" not in all_text(result.document)
    assert BODY in all_text(result.document)
