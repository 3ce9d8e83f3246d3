"""CSV files whose rows have different numbers of fields are indexed as a table with empty cells
instead of refused; real files through validation and the real unstructured partitioner."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.csv_rows import rectangular
from ingestion.parsing import parse_file
from ingestion.validation import Limits, validate_file
from services.errors import InvalidRequestError

pytestmark = pytest.mark.unit


def table(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    limits = Limits()
    parsed = parse_file(path, validate_file(path, path.name, limits), name=path.name, limits=limits)
    (block,) = [b for s in parsed.document.sections for b in s.blocks]
    return block.text


def test_short_and_long_rows_become_empty_cells(tmp_path: Path) -> None:
    text = table(tmp_path, b"name,team,phone\nAda,ops\nBob,dev,555-0100,night shift\nCy,qa,1\n")
    assert text.splitlines() == [
        "| name | team | phone |  |",
        "| --- | --- | --- | --- |",
        "| Ada | ops |  |  |",
        "| Bob | dev | 555-0100 | night shift |",
        "| Cy | qa | 1 |  |",
    ]


def test_a_semicolon_export_in_cp1252_with_quoted_fields_keeps_its_cells(tmp_path: Path) -> None:
    data = 'Artikel;Preis;Notiz\n"Kaffee; Bohnen";€12\nTee für Gäste;€7;"lose, 100 g"\n'
    assert table(tmp_path, data.encode("cp1252")).splitlines()[2:] == [
        "| Kaffee; Bohnen | €12 |  |",
        "| Tee für Gäste | €7 | lose, 100 g |",
    ]


def test_rows_of_one_width_are_left_as_they_are() -> None:
    assert rectangular("a,b\n1,2\n3,4\n", max_cells=100) is None
    assert rectangular("just one column\nof lines\n", max_cells=100) is None


def test_padding_past_the_cell_budget_is_refused_with_the_reason() -> None:
    wide = "a," * 50 + "a\n" + "1\n" * 10
    with pytest.raises(InvalidRequestError, match="11 rows of up to 51 fields exceed 100 table"):
        rectangular(wide, max_cells=100)
