"""CSV files whose rows have different numbers of fields, made rectangular before parsing.

Exports, hand-edited sheets and logs often end a row early (trailing empty fields dropped) or
carry one field more than the header. Pandas, under unstructured's CSV partitioner, refused the
whole file ("Expected 3 fields in line 3, saw 4"), so nothing of it was indexed. A spreadsheet
shows such a file as a table with empty cells; so is it read here: every row is padded with
empty fields to the widest row's width (a header shorter than its rows gets unnamed columns).
The delimiter is found as unstructured finds it (``csv.Sniffer`` on the first non-blank line),
and the cell budget is unstructured's own (``CSV_MAX_CELLS``), checked before the padded copy
is built.
"""

from __future__ import annotations

import csv
import io

from services.errors import InvalidRequestError

_DELIMITERS = (",", ";", "\t", "|")


def rectangular(text: str, *, max_cells: int) -> str | None:
    """``text`` with every row padded to the widest row's width, or None when its rows already
    have one width (or it is no delimited text at all)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        dialect = csv.Sniffer().sniff(first)
    except csv.Error:
        return None  # one column: nothing to pad
    if dialect.delimiter not in _DELIMITERS:
        return None  # a space (words of one text column) or no delimiter at all: left as it is
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=dialect.delimiter))
    except csv.Error as exc:
        raise InvalidRequestError(f"cannot parse csv ({exc})") from exc
    widths = {len(row) for row in rows if row}
    if len(widths) <= 1:
        return None
    width = max(widths)
    if width * len(rows) > max_cells:
        raise InvalidRequestError(
            f"csv too large: {len(rows):,} rows of up to {width:,} fields exceed "
            f"{max_cells:,} table cells (CSV_MAX_CELLS)"
        )
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=dialect.delimiter, lineterminator="\n")
    writer.writerows(row + [""] * (width - len(row)) for row in rows if row)
    return out.getvalue()
