"""PPTX and XLSX through the real jobs API into the real Weaviate, and the files refused in the
same batch (an encrypted PDF, a file over the size limit) with their reasons; nothing already
indexed is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from pptx import Presentation
from reportlab.pdfgen import canvas

from tests.integration.conftest import LiveStack
from tests.integration.ingest_api import ingest
from tests.integration.test_ingestion_formats import chunks_of

pytestmark = pytest.mark.integration

SLIDES = [
    ("Fleet maintenance plan", ["Inspect the hydraulic pumps every quarter.", "Replace filters."]),
    ("Budget outlook", ["Spare parts spending falls by eight percent."]),
]
DEPOTS = [["Depot", "Trucks", "Drivers"], ["Leeds", 14, 22], ["Bristol", 9, 15]]


def pptx_file(path: Path) -> Path:
    deck = Presentation()
    for title, bullets in SLIDES:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        frame = slide.placeholders[1].text_frame
        frame.text = bullets[0]
        for bullet in bullets[1:]:
            frame.add_paragraph().text = bullet
    deck.save(path)
    return path


def xlsx_file(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "Depots"
    for row in DEPOTS:
        sheet.append(row)
    book.save(path)
    return path


def encrypted_pdf(path: Path) -> Path:
    pdf = canvas.Canvas(str(path), encrypt="pw")
    pdf.drawString(72, 720, "Payroll figures for the northern depots.")
    pdf.save()
    return path


def oversized_text(path: Path, limit_bytes: int) -> Path:
    line = b"Convoy log entry: trucks left the depot on time.\n"
    with path.open("wb") as fh:
        fh.write(line * (limit_bytes // len(line) + 10))
    return path


def indexed_state(live_stack: LiveStack) -> dict[str, tuple[str, str]]:
    """chunk_id -> (title/section, text) of every stored chunk."""
    return {cid: (title, text) for cid, title, text in live_stack.components.store.chunk_texts()}


@pytest.fixture(scope="module")
def office_job(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("office")
    limit = int(live_stack.settings.ingestion.max_file_mb * 1024 * 1024)
    files = {
        "pptx": pptx_file(folder / "fleet-plan.pptx"),
        "xlsx": xlsx_file(folder / "depots.xlsx"),
        "encrypted": encrypted_pdf(folder / "payroll-locked.pdf"),
        "oversized": oversized_text(folder / "convoy-log.txt", limit),
    }
    before = indexed_state(live_stack)
    body = ingest(
        live_stack.url, live_stack.admin_key, list(files.values()), groups="fleet", redact=False
    )
    body["by_role"] = {
        role: next(f for f in body["files"] if f["source"] == str(path))
        for role, path in files.items()
    }
    body["before"], body["after"] = before, indexed_state(live_stack)
    return body


def test_bad_files_are_rejected_with_reasons_while_pptx_and_xlsx_index(office_job: dict) -> None:
    roles = office_job["by_role"]
    assert office_job["status"] == "partial"
    assert (roles["pptx"]["status"], roles["xlsx"]["status"]) == ("indexed", "indexed")
    assert roles["encrypted"]["status"] == "rejected"
    assert roles["encrypted"]["reason"] == "encrypted PDF (password protected)"
    assert roles["oversized"]["status"] == "rejected"
    assert "over the limit" in roles["oversized"]["reason"]
    assert roles["encrypted"]["chunks"] == roles["oversized"]["chunks"] == 0


def test_pptx_slides_become_sections_with_slide_numbers(
    live_stack: LiveStack, office_job: dict
) -> None:
    chunks = chunks_of(live_stack, office_job["by_role"]["pptx"]["doc_id"])
    by_section = {c.section: c for c in chunks}
    assert set(by_section) == {title for title, _ in SLIDES}
    plan = by_section["Fleet maintenance plan"]
    assert "Inspect the hydraulic pumps every quarter." in plan.text and plan.page == 1
    outlook = by_section["Budget outlook"]
    assert "Spare parts spending falls by eight percent." in outlook.text and outlook.page == 2
    assert all(c.doc_type == "pptx" and c.access_groups == ("fleet",) for c in chunks)


def test_xlsx_sheet_is_kept_as_a_table(live_stack: LiveStack, office_job: dict) -> None:
    chunks = chunks_of(live_stack, office_job["by_role"]["xlsx"]["doc_id"])
    table = "\n".join(c.text for c in chunks)
    assert "| Depot | Trucks | Drivers |" in table
    assert "| Leeds | 14 | 22 |" in table and "| Bristol | 9 | 15 |" in table
    assert all(c.doc_type == "xlsx" for c in chunks)


def test_nothing_already_indexed_is_touched(office_job: dict) -> None:
    before, after = office_job["before"], office_job["after"]
    assert before, "the session stack indexes a sample corpus first"
    assert {cid: after.get(cid) for cid in before} == before  # every old chunk, unchanged
    new = set(after) - set(before)
    roles = office_job["by_role"]
    assert len(new) == roles["pptx"]["chunks"] + roles["xlsx"]["chunks"]
    assert not any("Payroll" in text or "Convoy log" in text for _, text in after.values())
