"""Worksheet numbers written as Excel shows them, in the reader's copy of a workbook.

unstructured reads a workbook's stored values (through pandas and openpyxl), so 25% was indexed
as 0.25, 31 Dec 2024 as ``2024-12-31 00:00:00`` and "1,234.50 €" as 1234.5. Each numeric cell
with a number format other than General is rewritten as an inline string holding the text the
format shows (``ingestion.excel_number_format``); a format that module does not render leaves
the cell as it was. The formula of a rewritten cell goes with it: its cached result is shown.

Excel's built-in short date (format 14) and date-time (22) follow the reader's system locale
(12/31/2024 in the US, 31/12/2024 in the UK); they are written in ISO form (2024-12-31), which
no reader misreads.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from openpyxl.styles.numbers import BUILTIN_FORMATS

from ingestion.excel_number_format import displayed

S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_NS = {"s": S}
_LOCALE_FORMATS = {14: "yyyy-mm-dd", 22: "yyyy-mm-dd h:mm"}
_NOT_NUMBERS = {"s", "str", "inlineStr", "b", "e"}  # shared and inline text, booleans, errors


@dataclass(frozen=True, slots=True)
class NumberFormats:
    """Each cell style's format code (by the cells' ``s`` index) and the workbook's date
    system."""

    codes: tuple[str, ...]
    date1904: bool = False

    @classmethod
    def read(cls, styles: etree._Element | None, workbook: etree._Element) -> NumberFormats:
        properties = workbook.find("s:workbookPr", _NS)
        date1904 = properties is not None and properties.get("date1904", "0").lower() in (
            "1",
            "true",
        )
        if styles is None:
            return cls((), date1904)
        custom = {
            _number(f.get("numFmtId"), -1): f.get("formatCode", "")
            for f in styles.iterfind("s:numFmts/s:numFmt", _NS)
        }
        codes = []
        for xf in styles.iterfind("s:cellXfs/s:xf", _NS):
            number = _number(xf.get("numFmtId"), 0)
            codes.append(
                custom.get(number) or _LOCALE_FORMATS.get(number) or BUILTIN_FORMATS.get(number, "")
            )
        return cls(tuple(codes), date1904)

    def code(self, style: int) -> str:
        return self.codes[style] if 0 <= style < len(self.codes) else ""


def show_formatted_numbers(data: etree._Element, formats: NumberFormats) -> bool:
    """Rewrite the numeric cells of ``data`` (a ``sheetData``) as the text their formats show.
    Returns whether any cell changed."""
    changed = False
    for cell in data.iterfind("s:row/s:c", _NS):
        if cell.get("t") in _NOT_NUMBERS:
            continue
        stored = cell.find("s:v", _NS)
        if stored is None or not stored.text:
            continue
        try:
            value = float(stored.text)
        except ValueError:
            continue
        code = formats.code(_number(cell.get("s"), 0))
        text = displayed(value, code, date1904=formats.date1904)  # None for General
        if text is None:
            continue
        for child in list(cell):
            cell.remove(child)
        cell.set("t", "inlineStr")
        shown = etree.SubElement(etree.SubElement(cell, f"{{{S}}}is"), f"{{{S}}}t")
        shown.text = text
        changed = True
    return changed


def _number(attribute: str | None, default: int) -> int:
    """An index attribute as a number; a malformed one reads as ``default`` (the cell keeps its
    stored value rather than the workbook being refused)."""
    try:
        return int(attribute) if attribute else default
    except ValueError:
        return default
