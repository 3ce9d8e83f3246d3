"""Tables as Markdown pipe tables: rows stay rows, so the chunker can split between rows and
repeat the header, and the model reads a table, not a string of numbers."""

from __future__ import annotations

from collections.abc import Sequence

from bs4 import BeautifulSoup


def _cell(value: object) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text.replace("|", "\\\\|")


def rows_to_markdown(rows: Sequence[Sequence[object]]) -> str:
    """First row is the header. Ragged rows are padded; empty rows dropped."""
    clean = [[_cell(c) for c in row] for row in rows if any(_cell(c) for c in row)]
    if not clean:
        return ""
    width = max(len(r) for r in clean)
    clean = [r + [""] * (width - len(r)) for r in clean]
    lines = ["| " + " | ".join(clean[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(r) + " |" for r in clean[1:]]
    return "\n".join(lines)


def html_table_to_markdown(html: str) -> str:
    """unstructured's ``text_as_html`` (one <table>) to a Markdown table."""
    soup = BeautifulSoup(html, "html.parser")
    rows = [
        [cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])]
        for tr in soup.find_all("tr")
    ]
    return rows_to_markdown(rows)
