"""The reader's view of Office files (ingestion.office_cleanup) on real .docx, .xlsx and .pptx
files: only the parts holding hidden or dropped text change, the copy is temporary, and a file
with nothing to clean is read as it is."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from lxml import etree
from openpyxl import Workbook
from pptx import Presentation

from ingestion.office_cleanup import clean_wordprocessing, hidden_slide_numbers, reader_view
from services.errors import InvalidRequestError

pytestmark = pytest.mark.unit

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def body_text(path: Path) -> str:
    """Every w:t of the main document, in order (what the partitioner can read, at most)."""
    with zipfile.ZipFile(path) as archive:
        root = etree.fromstring(archive.read("word/document.xml"))
    return "".join(t.text or "" for t in root.iter(f"{{{W}}}t"))


def tracked_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Supply agreement", level=1)
    paragraph = document.add_paragraph("The price is ")
    paragraph._p.append(
        parse_xml(
            f'<w:del {nsdecls("w")} w:id="1" w:author="Legal"><w:r>'
            '<w:delText xml:space="preserve">nine million dollars </w:delText></w:r></w:del>'
        )
    )
    paragraph._p.append(
        parse_xml(
            f'<w:ins {nsdecls("w")} w:id="2" w:author="Legal"><w:r>'
            '<w:t xml:space="preserve">seven million dollars </w:t></w:r></w:ins>'
        )
    )
    paragraph.add_run("payable in advance.")
    document.core_properties.author = "Legal"
    document.save(str(path))
    return path


def test_docx_copy_changes_only_the_main_document_and_is_removed_afterwards(
    tmp_path: Path,
) -> None:
    source = tracked_docx(tmp_path / "agreement.docx")
    original = source.read_bytes()
    with reader_view(source, "docx") as visible:
        assert visible != source and visible.name == source.name
        assert "The price is seven million dollars payable in advance." in body_text(visible)
        assert "nine million" not in body_text(visible)
        with zipfile.ZipFile(source) as before, zipfile.ZipFile(visible) as after:
            assert [i.filename for i in before.infolist()] == [i.filename for i in after.infolist()]
            changed = {
                info.filename
                for info in before.infolist()
                if before.read(info) != after.read(info.filename)
            }
    assert changed == {"word/document.xml"}
    assert not visible.exists() and not visible.parent.exists()
    assert source.read_bytes() == original


def test_a_file_with_nothing_hidden_is_read_as_it_is(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph("Plain text, no tracked changes.")
    plain = tmp_path / "plain.docx"
    document.save(str(plain))
    book = Workbook()
    book.active.append(["Depot", "Trucks"])
    sheet = tmp_path / "plain.xlsx"
    book.save(sheet)
    for path, doc_type in ((plain, "docx"), (sheet, "xlsx"), (tmp_path / "notes.txt", "text")):
        with reader_view(path, doc_type) as visible:
            assert visible == path


def test_word_markup_is_resolved_to_what_word_shows() -> None:
    root = etree.fromstring(
        f"<w:body {nsdecls('w')}>"
        "<w:p><w:r><w:t>Kept.</w:t></w:r>"
        "<w:r><w:rPr><w:vanish/></w:rPr><w:t>Hidden.</w:t></w:r>"
        '<w:r><w:rPr><w:vanish w:val="0"/></w:rPr><w:t>Unhidden.</w:t></w:r>'
        '<w:r><w:rPr><w:vanish w:val="false"/></w:rPr><w:t>Also shown.</w:t></w:r>'
        '<w:r><w:rPr><w:rStyle w:val="Secret"/></w:rPr><w:t>Styled hidden.</w:t></w:r>'
        "<w:moveFrom w:id='1'><w:r><w:t>Old place.</w:t></w:r></w:moveFrom>"
        "<w:moveTo w:id='2'><w:r><w:t>New place.</w:t></w:r></w:moveTo>"
        "<w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent><w:r>"
        "<w:t>Click or tap here to enter text.</w:t></w:r></w:sdtContent></w:sdt>"
        "<w:sdt><w:sdtPr/><w:sdtContent><w:sdt><w:sdtContent><w:r><w:t>Nested.</w:t></w:r>"
        "</w:sdtContent></w:sdt></w:sdtContent></w:sdt>"
        "<w:smartTag w:element='place'><w:smartTagPr/><w:r><w:t>Leeds.</w:t></w:r></w:smartTag>"
        "</w:p></w:body>"
    )
    assert clean_wordprocessing(root, frozenset({"Secret"}))
    paragraph = root.find(f"{{{W}}}p")
    assert paragraph is not None
    assert [child.tag.split("}")[1] for child in paragraph] == ["r"] * 6
    assert "".join(t.text or "" for t in root.iter(f"{{{W}}}t")) == (
        "Kept.Unhidden.Also shown.New place.Nested.Leeds."
    )


def test_text_hidden_by_its_character_style_is_dropped(tmp_path: Path) -> None:
    document = docx.Document()
    style = document.styles.add_style("Internal note", 2)  # WD_STYLE_TYPE.CHARACTER
    style.font.hidden = True
    paragraph = document.add_paragraph("Discount is negotiable. ")
    paragraph.add_run("Floor price is 4.2 million.", style="Internal note")
    path = tmp_path / "styled.docx"
    document.save(str(path))
    with reader_view(path, "docx") as visible:
        assert body_text(visible) == "Discount is negotiable. "


def test_hidden_slide_numbers_count_every_slide(tmp_path: Path) -> None:
    deck = Presentation()
    for number in range(1, 5):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide {number}"
        if number in {2, 4}:
            slide._element.set("show", "0")
    deck.slides[2]._element.set("show", "1")
    path = tmp_path / "deck.pptx"
    deck.save(str(path))
    assert hidden_slide_numbers(path) == {2, 4}


def test_a_package_without_a_main_part_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
    with (
        pytest.raises(InvalidRequestError, match="no main document part"),
        reader_view(path, "docx"),
    ):
        pass
