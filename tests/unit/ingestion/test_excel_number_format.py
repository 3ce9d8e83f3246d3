"""Numbers as Excel shows them, from their format codes (the outputs are Excel's, en-US)."""

from __future__ import annotations

import pytest

from ingestion.excel_number_format import displayed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "code", "shown"),
    [
        (0.25, "0%", "25%"),
        (0.125, "0.0%", "12.5%"),
        (1234.5, '"$"#,##0.00', "$1,234.50"),
        (-1234.5, '"$"#,##0.00', "-$1,234.50"),
        (-1234.5, "#,##0.00;(#,##0.00)", "(1,234.50)"),
        (-3, "0;[Red]-0", "-3"),
        (0, '0.00;-0.00;"-"', "-"),
        (1234.5, "#,##0", "1,235"),
        (99, "#,##0.00 [$€-407]", "99.00 €"),
        (1234567, '#,##0,"K"', "1,235K"),
        (5, "000", "005"),
        (0.5, "#.00", ".50"),
        (1, "0.0#", "1.0"),
        (0.05, "0.0#", "0.05"),
        (1234.5, '_("$"* #,##0.00_)', "$1,234.50"),
        (1.5, "[Red]0.00", "1.50"),
        (45657, "mm/dd/yyyy", "12/31/2024"),
        (45657, "dd.mm.yyyy", "31.12.2024"),
        (45657, "d mmm yyyy", "31 Dec 2024"),
        (45657, "dddd, mmmm d, yyyy", "Tuesday, December 31, 2024"),
        (45657.75, "m/d/yy h:mm", "12/31/24 18:00"),
        (0.3958333333, "h:mm AM/PM", "9:30 AM"),
        (0.5, "hh:mm:ss", "12:00:00"),
        (1.5, "[h]:mm", "36:00"),
        (1, "yyyy-mm-dd", "1900-01-01"),
        (61, "yyyy-mm-dd", "1900-03-01"),
    ],
)
def test_a_number_reads_as_excel_shows_it(value: float, code: str, shown: str) -> None:
    assert displayed(value, code) == shown


def test_the_1904_date_system_counts_from_1904() -> None:
    assert displayed(0, "yyyy-mm-dd", date1904=True) == "1904-01-01"
    assert displayed(45657 - 1462, "yyyy-mm-dd", date1904=True) == "2024-12-31"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1, "General"),
        (12.5, "0.00E+00"),  # scientific
        (0.125, "# ?/?"),  # fraction
        (150, "[>=100]0;0.00"),  # condition
        (45657.5, "hh:mm:ss.00"),  # fractional seconds
        (0, "yyyy-mm-dd"),  # day 0: Excel shows 1900-01-00
        (60, "yyyy-mm-dd"),  # the 29 February 1900 Excel counts
        (-1, "yyyy-mm-dd"),
        (3, '0 "unclosed'),
        (float("inf"), "0.00"),  # a malformed cell
        (float("nan"), "yyyy-mm-dd"),
    ],
)
def test_a_code_not_rendered_keeps_the_stored_value(value: float, code: str) -> None:
    assert displayed(value, code) is None
