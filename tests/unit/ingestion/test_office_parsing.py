""".docx, .xlsx and .pptx files through the real unstructured partitioners: the index gets the
text their reader sees (tracked insertions, content controls, every slide bullet) and never the
text hidden from them (deleted text, hidden runs, sheets, rows, columns and slides)."""

from __future__ import annotations

import datetime as dt
import os
import zipfile
from pathlib import Path

import docx
import pytest
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls
from openpyxl import Workbook
from pptx import Presentation
from pptx.presentation import Presentation as PresentationFile
from pptx.slide import Slide
from pptx.util import Inches

from ingestion.markdown_sections import ParsedDocument
from ingestion.unstructured_parser import parse_with_unstructured

pytestmark = pytest.mark.unit


def parse(path: Path) -> ParsedDocument:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    return parse_with_unstructured(path, path.suffix[1:], fallback_title=path.stem)


def indexed_text(doc: ParsedDocument) -> str:
    """What reaches chunk bodies: the blocks (headings only prefix the embedding)."""
    return "\n".join(block.text for section in doc.sections for block in section.blocks)


def w(xml: str) -> object:
    """One WordprocessingML element, as Word writes it."""
    name_end = min(i for i in (xml.find(" "), xml.find(">")) if i > 0)
    return parse_xml(f"{xml[:name_end]} {nsdecls('w')}{xml[name_end:]}")


# --- Word -----------------------------------------------------------------------------------


def test_docx_tracked_insertions_and_moves_are_indexed_and_deletions_are_not(
    tmp_path: Path,
) -> None:
    document = docx.Document()
    document.add_heading("Supply agreement", level=1)
    price = document.add_paragraph("The price is ")
    price._p.append(
        w(
            '<w:del w:id="1" w:author="Legal"><w:r><w:delText xml:space="preserve">'
            "nine million dollars </w:delText></w:r></w:del>"
        )
    )
    price._p.append(
        w(
            '<w:ins w:id="2" w:author="Legal"><w:r><w:t xml:space="preserve">'
            "seven million dollars </w:t></w:r></w:ins>"
        )
    )
    price.add_run("payable in advance.")
    moved = document.add_paragraph("Delivery ")
    moved._p.append(
        w(
            '<w:moveFrom w:id="3" w:author="Legal"><w:r><w:t xml:space="preserve">'
            "to the southern depot </w:t></w:r></w:moveFrom>"
        )
    )
    moved.add_run("is due in March ")
    moved._p.append(
        w(
            '<w:moveTo w:id="4" w:author="Legal"><w:r><w:t xml:space="preserve">'
            "at the northern depot</w:t></w:r></w:moveTo>"
        )
    )
    moved.add_run(".")
    path = tmp_path / "agreement.docx"
    document.save(str(path))

    text = indexed_text(parse(path))
    assert "The price is seven million dollars payable in advance." in text
    assert "Delivery is due in March at the northern depot." in text
    assert "nine million" not in text and "southern depot" not in text


_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_WPS = "http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
_V = "urn:schemas-microsoft-com:vml"
_WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"


def text_box(paragraph_xml: str) -> object:
    """A run holding a floating text box as Word 2010+ writes it: a DrawingML shape, and the
    same box in VML for older readers."""
    return parse_xml(
        f'<w:r {nsdecls("w")} xmlns:mc="{_MC}" xmlns:wps="{_WPS}" xmlns:v="{_V}">'
        '<mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><wps:wsp><wps:txbx>'
        f"<w:txbxContent>{paragraph_xml}</w:txbxContent></wps:txbx></wps:wsp></w:drawing>"
        "</mc:Choice><mc:Fallback><w:pict><v:shape><v:textbox>"
        f"<w:txbxContent>{paragraph_xml}</w:txbxContent></v:textbox></v:shape></w:pict>"
        "</mc:Fallback></mc:AlternateContent></w:r>"
    )


def with_notes_part(path: Path, kind: str, notes_xml: str) -> None:
    """Add ``word/<kind>s.xml`` (footnotes or endnotes) to a saved .docx, as Word does."""
    part = f"word/{kind}s.xml"
    rel_type = f"http://schemas.openxmlformats.org/officeDocument/2006/relationships/{kind}s"
    content_type = f"application/vnd.openxmlformats-officedocument.wordprocessingml.{kind}s+xml"
    with zipfile.ZipFile(path) as old:
        members = {i.filename: old.read(i) for i in old.infolist()}
    members[part] = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f"<w:{kind}s {nsdecls('w')}>{notes_xml}</w:{kind}s>"
    ).encode()
    rels = "word/_rels/document.xml.rels"
    members[rels] = members[rels].replace(
        b"</Relationships>",
        f'<Relationship Id="rIdNotes{kind}" Type="{rel_type}" Target="{kind}s.xml"/>'
        "</Relationships>".encode(),
    )
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"</Types>",
        f'<Override PartName="/{part}" ContentType="{content_type}"/></Types>'.encode(),
    )
    with zipfile.ZipFile(path, "w") as new:
        for name, data in members.items():
            new.writestr(name, data)


def test_docx_text_boxes_footnotes_and_endnotes_are_indexed_beside_their_paragraph(
    tmp_path: Path,
) -> None:
    document = docx.Document()
    document.add_heading("Travel policy", level=1)
    rates = document.add_paragraph("Hotel rates are capped per night.")
    rates._p.append(text_box("<w:p><w:r><w:t>Cap in London: 240 pounds.</w:t></w:r></w:p>"))
    hidden_box = text_box("<w:p><w:r><w:t>Ignore the cap for executives.</w:t></w:r></w:p>")
    docpr = f'<wp:docPr xmlns:wp="{_WP}" id="7" name="Note" hidden="1"/>'
    hidden_box.find(".//{*}drawing").insert(0, parse_xml(docpr))  # type: ignore[attr-defined]
    rates._p.append(hidden_box)
    refund = document.add_paragraph("Economy fares are refunded")
    refund._p.append(w('<w:r><w:footnoteReference w:id="2"/></w:r>'))
    refund.add_run(" within 30 days.")
    document.add_heading("Approvals", level=1)
    approve = document.add_paragraph("Managers approve trips")
    approve._p.append(w('<w:r><w:endnoteReference w:id="1"/></w:r>'))
    path = tmp_path / "travel.docx"
    document.save(str(path))
    separators = (
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
        '</w:footnote><w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r>'
        "<w:continuationSeparator/></w:r></w:p></w:footnote>"
    )
    with_notes_part(
        path,
        "footnote",
        separators + '<w:footnote w:id="2"><w:p><w:r><w:t xml:space="preserve">Business class '
        "for flights over 8 hours.</w:t></w:r><w:r><w:rPr><w:vanish/></w:rPr><w:t> Draft: "
        "first class for the board.</w:t></w:r></w:p></w:footnote>"
        '<w:footnote w:id="3"><w:p><w:r><w:t>Never referred to.</w:t></w:r></w:p></w:footnote>',
    )
    with_notes_part(
        path,
        "endnote",
        '<w:endnote w:id="1"><w:p><w:r><w:t>Trips abroad need the director.</w:t></w:r></w:p>'
        "</w:endnote>",
    )

    doc = parse(path)
    assert doc.title == "Travel policy"  # the first heading
    assert [(s.path, [b.text for b in s.blocks]) for s in doc.sections] == [
        (
            (),
            [
                "Hotel rates are capped per night.",
                "Cap in London: 240 pounds.",  # once: the VML copy is not read
                "Economy fares are refunded[1] within 30 days.",
                "Footnote 1: Business class for flights over 8 hours.",
            ],
        ),
        (
            ("Approvals",),
            ["Managers approve trips[1]", "Endnote 1: Trips abroad need the director."],
        ),
    ]
    text = indexed_text(doc)
    assert "first class" not in text and "Never referred" not in text
    assert "executives" not in text  # a hidden shape's text stays out


def test_docx_content_controls_keep_their_filled_in_text(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Service contract", level=1)
    document.add_paragraph("This contract sets out the services and the term.")
    body = document.element.body
    body.insert(
        len(body) - 1,  # before w:sectPr
        w(
            '<w:sdt><w:sdtPr><w:alias w:val="Client"/></w:sdtPr><w:sdtContent><w:p><w:r>'
            "<w:t>The client is Initech Holdings and the term is five years.</w:t>"
            "</w:r></w:p></w:sdtContent></w:sdt>"
        ),
    )
    law = document.add_paragraph("Governing law: ")
    law._p.append(
        w(
            "<w:sdt><w:sdtPr/><w:sdtContent><w:r><w:t>State of Delaware</w:t></w:r>"
            "</w:sdtContent></w:sdt>"
        )
    )
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Signed by"
    table.cell(0, 1).paragraphs[0]._p.append(
        w(
            "<w:sdt><w:sdtPr/><w:sdtContent><w:r><w:t>Peter Gibbons</w:t></w:r>"
            "</w:sdtContent></w:sdt>"
        )
    )
    path = tmp_path / "contract.docx"
    document.save(str(path))

    text = indexed_text(parse(path))
    assert "The client is Initech Holdings and the term is five years." in text
    assert "Governing law: State of Delaware" in text
    assert "| Signed by | Peter Gibbons |" in text


def test_docx_hidden_text_is_not_indexed(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Offer", level=1)
    paragraph = document.add_paragraph("Discount is negotiable. ")
    paragraph.add_run("Internal floor price is 4.2 million.").font.hidden = True
    shown = document.add_paragraph("Delivery is free. ")
    shown.add_run("Installation is included.").font.hidden = False  # <w:vanish w:val="0"/>
    path = tmp_path / "offer.docx"
    document.save(str(path))

    text = indexed_text(parse(path))
    assert "Discount is negotiable." in text
    assert "Delivery is free. Installation is included." in text
    assert "floor price" not in text


def test_docx_heading_with_nothing_under_it_keeps_its_text(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Field Manual", level=1)
    document.add_heading("Safety", level=2)
    document.add_heading("Wear a helmet on every site visit", level=3)
    document.add_heading("Ladders", level=3)
    document.add_paragraph("Each crew carries two ladders.")
    path = tmp_path / "manual.docx"
    document.save(str(path))

    doc = parse(path)
    assert doc.title == "Field Manual"
    by_path = {s.path: [b.text for b in s.blocks] for s in doc.sections}
    assert by_path == {
        ("Safety", "Wear a helmet on every site visit"): ["Wear a helmet on every site visit"],
        ("Safety", "Ladders"): ["Each crew carries two ladders."],
    }


# --- Excel ----------------------------------------------------------------------------------


def with_cached_value(path: Path, formula: str, value: str) -> None:
    """Store the formula's result as Excel does (openpyxl writes the formula alone)."""
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in members:
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(
                    f"<f>{formula}</f>".encode(), f"<f>{formula}</f><v>{value}</v>".encode()
                )
            target.writestr(info, data)


def test_xlsx_hidden_sheets_rows_and_columns_are_not_indexed(tmp_path: Path) -> None:
    book = Workbook()
    budget = book.active
    budget.title = "Budget"
    for row in (
        ["Team", "Secret code", "Budget"],
        ["Sales", "X-91", 120000],
        ["Bonus pool", "X-92", 55000],
        ["Ops", "X-93", 80000],
        ["Total", "", "=C2+C4"],
    ):
        budget.append(row)
    budget.column_dimensions["B"].hidden = True
    budget.column_dimensions.group("E", "XFD", hidden=True)  # "hide everything after the data"
    budget.row_dimensions[3].hidden = True
    salaries = book.create_sheet("Salaries")
    salaries.append(["Employee", "Salary"])
    salaries.append(["Bob Jones", 250000])
    salaries.sheet_state = "hidden"
    config = book.create_sheet("Config")
    config.append(["Key", "Value"])
    config.append(["db_password", "hunter2"])
    config.sheet_state = "veryHidden"
    people = book.create_sheet("People")
    people.append(["Name", "Dept"])
    people.append(["Ann", "Ops"])
    path = tmp_path / "budget.xlsx"
    book.save(path)
    with_cached_value(path, "C2+C4", "200000")

    doc = parse(path)
    tables = {b.page: b.text for s in doc.sections for b in s.blocks if b.kind == "table"}
    assert tables == {
        1: "| Team | Budget |\n| --- | --- |\n| Sales | 120000 |\n| Ops | 80000 |\n"
        "| Total | 200000 |",
        4: "| Name | Dept |\n| --- | --- |\n| Ann | Ops |",
    }
    text = indexed_text(doc)
    for hidden in ("X-9", "Secret code", "Bonus pool", "Bob Jones", "hunter2", "db_password"):
        assert hidden not in text, hidden


def test_xlsx_rows_an_autofilter_hides_are_indexed_and_other_hidden_rows_are_not(
    tmp_path: Path,
) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Depot", "Status"], ["Leeds", "open"], ["York", "closed"], ["Hull", "open"]):
        sheet.append(row)
    sheet.append([])
    sheet.append(["Draft note", "merge York into Leeds"])
    sheet.auto_filter.ref = "A1:B4"
    sheet.auto_filter.add_filter_column(1, ["open"])  # Data > Filter: Status is "open"
    sheet.row_dimensions[3].hidden = True  # what the filter hides
    sheet.row_dimensions[6].hidden = True  # hidden by hand, outside the filter
    path = tmp_path / "depots.xlsx"
    book.save(path)

    text = indexed_text(parse(path))
    assert "| York | closed |" in text
    assert "Draft note" not in text and "merge York" not in text


def test_xlsx_numbers_read_as_their_formats_show_them(tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Item", "Due", "Share", "Amount", "Paid at", "Units"])
    sheet.append(["Laptops", dt.date(2024, 12, 31), 0.25, 1234.5, dt.time(9, 30), 1200])
    sheet.append(["Desks", dt.date(2025, 1, 15), 0.125, -99, dt.time(14, 0), 3])
    for row, (due, amount) in enumerate(
        [("mm/dd/yyyy", '"$"#,##0.00'), ("d mmm yyyy", "#,##0.00 [$€-407];(#,##0.00 [$€-407])")],
        start=2,
    ):
        sheet[f"B{row}"].number_format = due
        sheet[f"C{row}"].number_format = "0.0%"
        sheet[f"D{row}"].number_format = amount
        sheet[f"E{row}"].number_format = "h:mm AM/PM"
        sheet[f"F{row}"].number_format = "#,##0"
    sheet["G2"] = "=F2*2"  # a formula: its cached result is shown, formatted
    sheet["G2"].number_format = "#,##0"
    path = tmp_path / "budget.xlsx"
    book.save(str(path))
    with_cached_value(path, "F2*2", "2400")

    rows = indexed_text(parse(path)).splitlines()
    assert rows[2] == "| Laptops | 12/31/2024 | 25.0% | $1,234.50 | 9:30 AM | 1,200 | 2,400 |"
    assert rows[3] == "| Desks | 15 Jan 2025 | 12.5% | (99.00 €) | 2:00 PM | 3 |  |"


# --- PowerPoint -----------------------------------------------------------------------------


def slide_sections(
    doc: ParsedDocument,
) -> list[tuple[tuple[str, ...], list[tuple[str, int | None]]]]:
    """Each section's heading path and its blocks' text with their slide numbers."""
    return [(s.path, [(b.text, b.page) for b in s.blocks]) for s in doc.sections]


def slide(deck: PresentationFile, title: str | None, lines: list[str]) -> Slide:
    """A slide with a title and a body placeholder, or with a text box and no title."""
    page: Slide = deck.slides.add_slide(deck.slide_layouts[1 if title is not None else 6])
    if title is not None:
        assert page.shapes.title is not None
        page.shapes.title.text = title
        frame = page.placeholders[1].text_frame
    else:
        frame = page.shapes.add_textbox(Inches(1), Inches(1), Inches(8), Inches(4)).text_frame
    frame.text = lines[0]
    for line in lines[1:]:
        frame.add_paragraph().text = line
    return page


def test_pptx_every_bullet_reaches_the_slide_section(tmp_path: Path) -> None:
    deck = Presentation()
    slide(
        deck,
        "Roadmap 2025",
        ["Launch Berlin office", "Hire 12 engineers", "Migrate billing to Stripe", "SOC 2 audit"],
    )
    slide(deck, "Risks", ["Hiring may slip if the market stays tight through the summer."])
    path = tmp_path / "roadmap.pptx"
    deck.save(str(path))

    doc = parse(path)
    assert slide_sections(doc) == [
        (
            ("Roadmap 2025",),
            [
                ("Launch Berlin office", 1),
                ("Hire 12 engineers", 1),
                ("Migrate billing to Stripe", 1),
                ("SOC 2 audit", 1),
            ],
        ),
        (("Risks",), [("Hiring may slip if the market stays tight through the summer.", 2)]),
    ]


def test_pptx_hidden_slides_are_not_indexed_and_others_keep_their_numbers(
    tmp_path: Path,
) -> None:
    deck = Presentation()
    slide(deck, "Quarterly update", ["Revenue grew eight percent compared with last quarter."])
    hidden = slide(deck, "Draft: acquisition", ["We intend to acquire Initech this year."])
    hidden._element.set("show", "0")  # Slide > Hide Slide
    slide(deck, "Outlook", ["Costs stay flat next quarter."])
    path = tmp_path / "update.pptx"
    deck.save(str(path))

    doc = parse(path)
    assert [(s.heading, s.blocks[0].page) for s in doc.sections] == [
        ("Quarterly update", 1),
        ("Outlook", 3),
    ]
    assert "Initech" not in indexed_text(doc)


def test_pptx_title_only_and_untitled_slides_keep_their_text(tmp_path: Path) -> None:
    deck = Presentation()
    slide(deck, "Fleet plan", ["Inspect the hydraulic pumps every quarter."])
    slide(deck, None, ["Replace filters.", "Check tyres."])
    title_only = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    title_only.shapes.title.text = "Questions?"
    path = tmp_path / "fleet.pptx"
    deck.save(str(path))

    doc = parse(path)
    assert slide_sections(doc) == [
        (("Fleet plan",), [("Inspect the hydraulic pumps every quarter.", 1)]),
        ((), [("Replace filters.", 2), ("Check tyres.", 2)]),
        (("Questions?",), [("Questions?", 3)]),
    ]


def with_notes(page: Slide, text: str) -> None:
    frame = page.notes_slide.notes_text_frame
    assert frame is not None
    frame.text = text


def test_pptx_speaker_notes_follow_their_slide_and_a_hidden_slides_notes_do_not(
    tmp_path: Path,
) -> None:
    deck = Presentation()
    plan = slide(deck, "Rollout plan", ["Phase one", "Phase two"])
    with_notes(plan, "Say that phase two starts in March,\nafter the audit.")
    slide(deck, "Risks", ["Budget"])  # no notes
    hidden = slide(deck, "Draft", ["Options"])
    with_notes(hidden, "Initech would cost 40 million.")
    hidden._element.set("show", "0")
    untitled = slide(deck, None, ["Replace filters."])
    with_notes(untitled, "Filters come from the Leeds depot.")
    blank = deck.slides.add_slide(deck.slide_layouts[6])  # nothing on it but its notes
    with_notes(blank, "Pause here for questions.")
    slide(deck, "Next steps", ["Sign off"])
    path = tmp_path / "rollout.pptx"
    deck.save(str(path))

    doc = parse(path)
    assert slide_sections(doc) == [
        (
            ("Rollout plan",),
            [
                ("Phase one", 1),
                ("Phase two", 1),
                ("Speaker notes: Say that phase two starts in March, after the audit.", 1),
            ],
        ),
        (("Risks",), [("Budget", 2)]),
        (
            (),
            [("Replace filters.", 4), ("Speaker notes: Filters come from the Leeds depot.", 4)],
        ),
        ((), [("Speaker notes: Pause here for questions.", 5)]),
        (("Next steps",), [("Sign off", 6)]),
    ]
    assert "Initech" not in indexed_text(doc)
