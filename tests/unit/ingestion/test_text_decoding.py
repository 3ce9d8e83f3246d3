"""Text, Markdown, CSV, HTML and email files are read in the encoding they were saved in: UTF-16
with a BOM (Windows "Unicode text"), BOM-less UTF-16, cp1252 and Latin-1 (curly quotes, dashes
and euro signs intact), other legacy code pages; binary junk is refused with a one-line reason.
Real files in tmp_path, validated and parsed as ingestion does."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from ingestion.parsing import parse_file
from ingestion.validation import Limits, validate_file
from services.errors import InvalidRequestError

pytestmark = pytest.mark.unit

# curly quotes, an en dash, a euro sign, accents: cp1252 has them, cp1250 reads them otherwise
WESTERN = "He said \u201chello\u201d \u2013 it\u2019s naïve: crème brûlée costs €5."
PLAIN = f"{WESTERN}\n\nSecond paragraph about the résumé.\n"


def parsed(tmp_path: Path, name: str, data: bytes) -> tuple[str, list[str]]:
    """The title and the block texts ingestion gets from a file holding ``data``."""
    path = tmp_path / name
    path.write_bytes(data)
    limits = Limits()
    result = parse_file(path, validate_file(path, name, limits), name=name, limits=limits)
    document = result.document
    return document.title, [b.text for s in document.sections for b in s.blocks]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "cp1252", "utf-16-le"])
def test_plain_text_in_each_encoding_reads_right(tmp_path: Path, encoding: str) -> None:
    data = PLAIN.encode(encoding)  # utf-16/-32 write a BOM; utf-16-le none
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data

    _, blocks = parsed(tmp_path, "menu.txt", data)

    assert blocks == [WESTERN, "Second paragraph about the résumé."]


def test_cp1252_text_goes_to_the_partitioner_through_a_utf8_copy_that_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    _, blocks = parsed(tmp_path, "menu.txt", PLAIN.encode("cp1252"))

    assert blocks[0] == WESTERN  # unstructured on its own reads these bytes as cp1250
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "utf-16"])
def test_markdown_in_a_legacy_or_utf16_encoding_keeps_its_structure(
    tmp_path: Path, encoding: str
) -> None:
    text = "# Überschrift café\n\n## Présentation\n\nCrème brûlée à la carte.\n"

    title, blocks = parsed(tmp_path, "menu.md", text.encode(encoding))

    assert (title, blocks) == (
        "Überschrift café",
        ["Crème brûlée à la carte."],
    )


def test_ascii_markdown_saved_as_utf16_without_a_bom_is_not_read_as_nul_interleaved_bytes(
    tmp_path: Path,
) -> None:
    text = "# Policy\n\nRevenue grew by ten percent.\n"

    assert parsed(tmp_path, "policy.md", text.encode("utf-16-le")) == (
        "Policy",
        ["Revenue grew by ten percent."],
    )


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])
def test_csv_from_excel_in_utf16_or_cp1252_keeps_its_cells(tmp_path: Path, encoding: str) -> None:
    text = "name,city,price\nJosé,Málaga,€12\nZoë,Besançon,€7\n"

    _, blocks = parsed(tmp_path, "prices.csv", text.encode(encoding))

    assert "| José | Málaga | €12 |" in blocks[0]
    assert "| Zoë | Besançon | €7 |" in blocks[0]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Договор действует до конца года, оплата в течение тридцати дней.", "cp1251"),
        ("Zażółć gęślą jaźń. Proszę o przesłanie faktury do końca miesiąca.", "cp1250"),
        (
            "Γεια σας, η σύμβαση ισχύει μέχρι το τέλος του έτους, πληρωμή σε τριάντα ημέρες.",
            "cp1253",
        ),
    ],
    ids=["russian-cp1251", "polish-cp1250", "greek-cp1253"],
)
def test_text_in_another_legacy_code_page_is_not_forced_into_cp1252(
    tmp_path: Path, text: str, encoding: str
) -> None:
    assert parsed(tmp_path, "notes.txt", text.encode(encoding))[1] == [text]


def test_html_page_declaring_windows_1252_is_read_with_its_charset(tmp_path: Path) -> None:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
        f"<title>Café</title></head><body><h1>Café menu</h1><p>{WESTERN}</p></body></html>"
    )

    assert parsed(tmp_path, "menu.html", page.encode("cp1252")) == ("Café menu", [WESTERN])


def test_8bit_latin1_email_is_read_with_its_declared_charset(tmp_path: Path) -> None:
    message = (
        "From: a@example.org\r\nTo: b@example.org\r\nSubject: Angebot\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Das Angebot für die Büromöbel beträgt 12.000 Euro.\r\n"
    )

    assert parsed(tmp_path, "offer.eml", message.encode("latin-1")) == (
        "Angebot",
        ["Das Angebot für die Büromöbel beträgt 12.000 Euro."],
    )


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        (
            "image.txt",
            b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16,
            "no plausible character encoding",
        ),
        ("dump.md", b"# Log\n\nstarted\x00\x00\x01\x02 at 10:00\n", "contains NUL characters"),
        ("data.csv", b"id,value\n1,\x00\x00\x00\x07\n", "contains NUL characters"),
    ],
    ids=["image", "markdown-with-nuls", "csv-with-nuls"],
)
def test_binary_junk_is_refused_with_a_one_line_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    with pytest.raises(InvalidRequestError, match=rf"^not text \({reason}") as refused:
        parsed(tmp_path, name, data)
    assert "\n" not in str(refused.value)
