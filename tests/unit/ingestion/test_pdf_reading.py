"""PDFs as viewers open them: a PDF encrypted with an empty user password (print/copy limits only)
is read, and only one that needs a password is refused; words hyphenated at a line end or holding
soft hyphens are indexed whole; a few stray bytes before the header do not make a PDF corrupt.
Real PDFs written by reportlab, validated and parsed as ingestion does."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.parsing import parse_file
from ingestion.validation import Limits, validate_file
from services.errors import InvalidRequestError

pytestmark = pytest.mark.unit

FONT = "Vera"  # a TrueType font shipped with reportlab: its text keeps U+00AD when extracted


def write_pdf(path: Path, lines: list[str], *, title: str = "", encrypt: object = None) -> Path:
    """One page, one paragraph: ``lines`` at 14 pt leading in 11 pt type, a 20 pt title above."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
    _, height = A4
    c = canvas.Canvas(str(path), pagesize=A4, encrypt=encrypt)
    if title:
        c.setFont(FONT, 20)
        c.drawString(72, height - 60, title)
    c.setFont(FONT, 11)
    for number, line in enumerate(lines):
        c.drawString(72, height - 100 - 14 * number, line)
    c.showPage()
    c.save()
    return path


def indexed_text(path: Path) -> str:
    limits = Limits()
    parsed = parse_file(path, validate_file(path, path.name, limits), name=path.name, limits=limits)
    blocks = [b.text for s in parsed.document.sections for b in s.blocks]
    return "\n".join([parsed.document.title, *blocks])


def restricted(user_password: str) -> object:
    from reportlab.lib.pdfencrypt import StandardEncryption

    return StandardEncryption(
        user_password, ownerPassword="owner-only", canPrint=0, canCopy=0, strength=128
    )


# --- encryption ----------------------------------------------------------------------------------


def test_only_a_pdf_that_needs_a_password_is_refused(tmp_path: Path) -> None:
    lines = ["The calibration report is due every year in March."]
    opens_without_prompt = write_pdf(tmp_path / "restricted.pdf", lines, encrypt=restricted(""))
    locked = write_pdf(tmp_path / "locked.pdf", lines, encrypt=restricted("secret"))

    assert "calibration report is due" in indexed_text(opens_without_prompt)
    with pytest.raises(InvalidRequestError, match=r"^encrypted PDF \(password protected\)$"):
        indexed_text(locked)


# --- words broken across lines -------------------------------------------------------------------


def test_line_end_hyphenation_and_soft_hyphens_leave_whole_words(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "datasheet.pdf",
        [
            "The new infor-",
            "mation system replaces the data-",
            "base; the instru\u00ad",
            "ment is calibrated yearly for co\u00adop\u00aderation partners.",
        ],
        title="Instru\u00adment Data\u00adsheet",
    )

    text = indexed_text(path)

    assert text.splitlines() == [
        "Instrument Datasheet",
        "The new information system replaces the database; the instrument is calibrated "
        "yearly for cooperation partners.",
    ]


def test_compounds_broken_at_their_own_hyphen_keep_it(tmp_path: Path) -> None:
    path = write_pdf(
        tmp_path / "strategy.pdf",
        [
            "A data-driven plan needs a data-",
            "driven culture and state-of-",
            "the-art tools from the Anglo-",
            "Saxon tradition.",
        ],
    )

    assert indexed_text(path).splitlines()[1] == (
        "A data-driven plan needs a data-driven culture and state-of-the-art tools from "
        "the Anglo- Saxon tradition."
    )


# --- stray bytes before the header ---------------------------------------------------------------


def test_a_pdf_with_bytes_before_its_header_is_read_and_a_non_pdf_is_still_refused(
    tmp_path: Path,
) -> None:
    plain = write_pdf(tmp_path / "plain.pdf", ["Pallets leave the depot every Tuesday."])
    prefixed = tmp_path / "prefixed.pdf"
    prefixed.write_bytes(b"\r\n\r\n" + plain.read_bytes())
    not_a_pdf = tmp_path / "error-page.pdf"
    not_a_pdf.write_bytes(b"<html><body>502 Bad Gateway</body></html>")

    assert "Pallets leave the depot every Tuesday." in indexed_text(prefixed)
    with pytest.raises(InvalidRequestError, match=r"^corrupt file \(not a PDF\)$"):
        validate_file(not_a_pdf, not_a_pdf.name, Limits())
