"""Build a test corpus at test time: nothing downloaded, nothing committed but this code."""

from __future__ import annotations

import textwrap
from email.message import EmailMessage
from pathlib import Path

PII = {
    "name": "Margaret Thornbury",
    "email": "m.thornbury@thornbury-law.com",  # example.org is a documentation domain, not PII
    "phone": "212-555-0187",
    "ssn": "536-22-8174",
    "card": "4539 1488 0343 6467",  # Luhn-valid; 4111 1111 1111 1111 is the famous test number
    "iban": "DE89 3704 0044 0532 0130 00",
}

#: PII as Word documents and pasted text carry it: a card grouped with no-break spaces, an SSN
#: typed with non-breaking hyphens, a zero-width space inside an e-mail address (pasted from a
#: chat), a phone number in fullwidth digits (typed with a CJK input method).
LOOKALIKE_PII = {
    "card": "5191\u00a02304\u00a08857\u00a01127",
    "ssn": "287\u201141\u20119063",
    "email": "r.okafor\u200b@brightwater-legal.com",
    "phone": "\uff0b\uff11 \uff14\uff11\uff15 \uff15\uff15\uff15 \uff10\uff11\uff19\uff18",
}


def two_column_pdf(path: Path) -> None:
    """Page 1: a title, two columns of prose under headings, then a table. Page 2: a heading."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    _, height = A4
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setTitle("Quarterly Operations Review")
    c.setFont("Helvetica-Bold", 20)
    c.drawString(50, height - 60, "Quarterly Operations Review")
    columns = {
        50: ("Warehouse capacity", "The northern warehouse ran at ninety percent capacity."),
        315: ("Staffing", "The night shift was extended to cover the winter peak."),
    }
    for x, (heading, sentence) in columns.items():
        c.setFont("Helvetica-Bold", 14)
        c.drawString(x, height - 110, heading)
        c.setFont("Helvetica", 10)
        for i, line in enumerate(textwrap.wrap(" ".join([sentence] * 5), 40)):
            c.drawString(x, height - 135 - 14 * i, line)
    # a ruled table below both columns
    rows = [("Region", "Orders", "Returns"), ("North", "1200", "31"), ("South", "950", "18")]
    top = height - 360
    c.setFont("Helvetica", 10)
    for r, row in enumerate(rows):
        for col, value in enumerate(row):
            c.drawString(60 + col * 120, top - 18 * r - 13, value)
    for r in range(len(rows) + 1):
        c.line(50, top - 18 * r, 410, top - 18 * r)
    for col in range(4):
        c.line(50 + col * 120, top, 50 + col * 120, top - 18 * len(rows))
    c.showPage()
    c.setFont("Helvetica-Bold", 14)
    c.drawString(50, height - 60, "Outlook")
    c.setFont("Helvetica", 10)
    c.drawString(50, height - 85, "Next quarter the southern depot opens a second loading bay.")
    c.save()


def scanned_pdf(path: Path) -> None:
    """Text rendered to an image, the image saved as a PDF page (no text layer)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (1700, 2200), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    lines = [
        "FAX TRANSMISSION",
        "The boiler inspection is scheduled for Tuesday.",
        "Technicians need access to the basement plant room.",
    ]
    for i, line in enumerate(lines):
        draw.text((120, 200 + 90 * i), line, fill="black", font=font)
    image.save(path, "PDF", resolution=200.0)


def docx_file(path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Field Manual", level=1)
    document.add_heading("Safety", level=2)
    document.add_paragraph("Wear a helmet on every site visit.")
    document.add_heading("Equipment", level=3)
    document.add_paragraph("Each crew carries two ladders.")
    table = document.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("Item", "Count"), ("Ladder", "2"), ("Helmet", "6")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    document.save(str(path))


def lookalike_pii_docx(path: Path) -> None:
    """A new-starter form whose PII is written with look-alike and invisible characters."""
    import docx

    document = docx.Document()
    document.add_heading("New starter form", level=1)
    document.add_paragraph(
        f"The HR desk sets up the new starter with social security number {LOOKALIKE_PII['ssn']} "
        f"and the corporate card {LOOKALIKE_PII['card']}. Questions about the contract go to "
        f"{LOOKALIKE_PII['email']}; the desk phone is {LOOKALIKE_PII['phone']}."
    )
    document.save(str(path))


def html_file(path: Path) -> None:
    path.write_text(
        "<html><head><title>Canteen</title></head><body><h1>Canteen</h1><h2>Opening hours</h2>"
        "<p>The canteen opens at seven in the morning.</p>"
        "<table><tr><th>Day</th><th>Dish</th></tr><tr><td>Monday</td><td>Lentil soup</td></tr>"
        "</table></body></html>",
        encoding="utf-8",
    )


def markdown_file(path: Path) -> None:
    path.write_text(
        "# Parking\n\n## Permits\n\nPermits are renewed every January.\n", encoding="utf-8"
    )


def csv_file(path: Path) -> None:
    path.write_text("sku,name,price\nA-1,Bolt,0.25\nA-2,Nut,0.10\n", encoding="utf-8")


def eml_file(path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Server room access"
    message["From"] = "facilities@example.com"
    message["To"] = "staff@example.com"
    message.set_content("The server room keypad code changes on the first of each month.")
    path.write_bytes(bytes(message))


def pii_file(path: Path) -> None:
    path.write_text(
        "# Customer escalation\n\n"
        f"The complaint came from {PII['name']}, reachable at {PII['email']} or by phone on "
        f"{PII['phone']}. Her social security number is {PII['ssn']}. She paid with the card "
        f"{PII['card']} and asked for a refund to the account {PII['iban']}.\n",
        encoding="utf-8",
    )


def build_corpus(folder: Path) -> dict[str, Path]:
    """Every file of the acceptance corpus, by role."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "pdf": folder / "ops-review.pdf",
        "scan": folder / "fax.pdf",
        "docx": folder / "field-manual.docx",
        "html": folder / "canteen.html",
        "md": folder / "parking.md",
        "csv": folder / "parts.csv",
        "eml": folder / "server-room.eml",
        "corrupt": folder / "broken.pdf",
        "empty": folder / "empty.txt",
    }
    two_column_pdf(files["pdf"])
    scanned_pdf(files["scan"])
    docx_file(files["docx"])
    html_file(files["html"])
    markdown_file(files["md"])
    csv_file(files["csv"])
    eml_file(files["eml"])
    files["corrupt"].write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage\n")
    files["empty"].write_bytes(b"")
    return files


def text_files(folder: Path, count: int, *, paragraphs: int = 6) -> list[Path]:
    """``count`` distinct Markdown files for bulk runs (resume, incremental, benchmark)."""
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["ledger", "turbine", "harbour", "orchard", "archive", "glacier", "foundry"]
    paths = []
    for n in range(count):
        topic = topics[n % len(topics)]
        body = "\n\n".join(
            f"Paragraph {p} of note {n} on the {topic}: the {topic} team logged entry {n * 31 + p} "
            f"and reviewed procedure {p} before the shift change. Findings were filed the same day."
            for p in range(paragraphs)
        )
        path = folder / f"note-{n:04d}.md"
        path.write_text(f"# Note {n} on the {topic}\n\n## Log\n\n{body}\n", encoding="utf-8")
        paths.append(path)
    return paths
