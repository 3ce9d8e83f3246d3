"""PDF to sections with pdfplumber: text in reading order (two columns read as two columns),
tables as Markdown tables, headings from font size, pages kept. A page with no text layer is
rendered and read by tesseract. Text no reader sees (white on the page, under a point high, off
the page) is not read.

unstructured's ``fast`` PDF strategy finds no tables and imports unstructured-inference (whose
dependencies replace the CPU torch), so PDFs take this path; other formats go through unstructured.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.markdown_sections import Block, ParsedDocument, Section
from ingestion.ocr import ocr_image
from ingestion.pdf_visibility import centre_in, visible_objects
from ingestion.tables import rows_to_markdown
from services.errors import InvalidRequestError

_SOFT_HYPHEN = "\u00ad"
_HYPHEN = re.compile("[-\u2010]")  # hyphen-minus, hyphen; a dash (U+2013, U+2014) splits no word
_COMPOUND = re.compile(r"[^\W\d_]+(?:[-\u2010][^\W\d_]+)+")
_WORD_END = re.compile(r"[^\W\d_]+$")
_WORD_START = re.compile(r"^[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class _Item:
    top: float
    text: str
    size: float
    kind: str  # line | table


def _gutter(page: Any) -> float | None:
    """The x of a gutter splitting the page into two text columns, if there is one. Only
    body-size words count: a title or a table may run across the gutter."""
    width = float(page.width)
    words = page.extract_words(extra_attrs=["size"])
    if len(words) < 20:
        return None
    body = statistics.median(w["size"] for w in words)
    words = [w for w in words if abs(w["size"] - body) < 0.5]
    lo, hi = width * 0.40, width * 0.60
    crossing = [w for w in words if w["x0"] < hi and w["x1"] > lo]
    for step in range(41):
        x = lo + (hi - lo) * step / 40
        if not any(w["x0"] < x < w["x1"] for w in crossing):
            left = sum(1 for w in words if w["x1"] <= x)
            right = sum(1 for w in words if w["x0"] >= x)
            if left > 5 and right > 5:
                return x
    return None


def _line_item(line: dict[str, Any]) -> _Item:
    size = max((c.get("size", 0.0) for c in line.get("chars", [])), default=0.0)
    return _Item(line["top"], line["text"].strip(), size, "line")


def _page_items(page: Any) -> list[list[_Item]]:
    """Items (text lines and tables) in reading order, as runs: lines and tables spanning the
    whole width, then each column top to bottom, then spanning items below the columns. Only
    the characters a reader sees are read (``pdf_visibility``)."""
    page = page.filter(visible_objects(page))
    tables = page.find_tables()
    boxes = [t.bbox for t in tables]
    body = page.filter(lambda o: o.get("object_type") != "char" or not centre_in(o, boxes))
    table_items = [
        (t.bbox, _Item(t.bbox[1], md, 0.0, "table"))
        for t in tables
        if (md := rows_to_markdown(t.extract()))
    ]
    gutter = _gutter(body)
    lines = [ln for ln in body.extract_text_lines(return_chars=True) if ln["text"].strip()]
    if gutter is None:
        items = [_line_item(ln) for ln in lines] + [item for _, item in table_items]
        return [sorted(items, key=lambda i: i.top)]
    spanning = [
        _line_item(ln)
        for ln in lines
        if any(c["x0"] < gutter < c["x1"] for c in ln.get("chars", []))
    ]
    spanning += [item for box, item in table_items if box[0] < gutter < box[2]]
    bands = [(i.top - 1, i.top + max(i.size, 1) + 1) for i in spanning if i.kind == "line"]
    bands += [(box[1] - 1, box[3] + 1) for box, _ in table_items if box[0] < gutter < box[2]]
    columns_body = body.filter(
        lambda o: (
            o.get("object_type") != "char"
            or not any(top <= o["top"] <= bottom for top, bottom in bands)
        )
    )
    columns: list[list[_Item]] = []
    for x0, x1 in ((0.0, gutter), (gutter, float(page.width))):
        crop = columns_body.crop((x0, 0, x1, float(page.height)), strict=False)
        items = [
            _line_item(ln)
            for ln in crop.extract_text_lines(return_chars=True)
            if ln["text"].strip()
        ]
        items += [item for box, item in table_items if box[2] <= gutter if x0 == 0.0] + [
            item for box, item in table_items if box[0] >= gutter if x0 > 0.0
        ]
        columns.append(sorted(items, key=lambda i: i.top))
    first = min((c[0].top for c in columns if c), default=0.0)
    above = sorted((i for i in spanning if i.top < first), key=lambda i: i.top)
    below = sorted((i for i in spanning if i.top >= first), key=lambda i: i.top)
    return [run for run in (above, *columns, below) if run]


def parse_pdf(
    path: Path, *, fallback_title: str, max_pages: int, ocr: bool = True, ocr_dpi: int = 200
) -> tuple[ParsedDocument, int]:
    """Sections of a PDF and how many pages needed OCR."""
    import pdfplumber
    from pdfminer.pdfdocument import PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        pdf = pdfplumber.open(path)
    except PDFPasswordIncorrect as exc:
        raise InvalidRequestError("encrypted PDF (password protected)") from exc
    except (PDFSyntaxError, ValueError, KeyError, TypeError) as exc:
        raise InvalidRequestError(f"corrupt PDF ({type(exc).__name__})") from exc
    except Exception as exc:  # pdfminer raises a zoo of types on broken files
        # pdfplumber wraps pdfminer's errors: the password error is then its argument
        causes = [exc, *exc.args, exc.__cause__, exc.__context__]
        if (
            any(isinstance(c, PDFPasswordIncorrect) for c in causes)
            or "password" in str(exc).lower()
            or "encrypt" in type(exc).__name__.lower()
        ):
            raise InvalidRequestError("encrypted PDF (password protected)") from exc
        raise InvalidRequestError(f"corrupt PDF ({type(exc).__name__})") from exc
    with pdf:  # an encrypted PDF that opened needs no password (only print/copy limits): read it
        if len(pdf.pages) > max_pages:
            raise InvalidRequestError(f"{len(pdf.pages)} pages, more than the limit {max_pages}")
        pages: list[tuple[int, list[list[_Item]]]] = []
        ocr_pages = 0
        try:
            for number, page in enumerate(pdf.pages, start=1):
                columns = _page_items(page)
                if not any(columns) and ocr:
                    image = page.to_image(resolution=ocr_dpi).original
                    text = ocr_image(image)
                    ocr_pages += 1
                    lines = [
                        _Item(float(i), ln.strip(), 0.0, "line")
                        for i, ln in enumerate(text.splitlines())
                    ]
                    # keep blank lines as paragraph breaks (empty text)
                    columns = [lines]
                pages.append((number, columns))
        except InvalidRequestError:
            raise
        except Exception as exc:
            raise InvalidRequestError(f"corrupt PDF ({type(exc).__name__})") from exc
        metadata_title = str((pdf.metadata or {}).get("Title") or "").strip()
    return _sections(pages, fallback_title=metadata_title or fallback_title), ocr_pages


def _compounds(pages: list[tuple[int, list[list[_Item]]]]) -> frozenset[str]:
    """Pairs of words the document joins with a hyphen inside a line (``data-driven``;
    ``state-of-the-art`` gives ``state-of``, ``of-the``, ``the-art``), lowercased."""
    pairs: set[str] = set()
    for _, columns in pages:
        for item in (i for column in columns for i in column if i.kind == "line"):
            for chain in _COMPOUND.findall(item.text):
                parts = _HYPHEN.split(chain.lower())
                pairs.update(f"{a}-{b}" for a, b in itertools.pairwise(parts))
    return frozenset(pairs)


def _continues_word(text: str, line: str, compounds: frozenset[str]) -> str | None:
    """The text with ``line`` joined to it when ``text`` ends in a word broken across the line
    end, else ``None``.

    A soft hyphen at the end marks a break point: the parts join. A hyphen right after a letter,
    followed by a line that starts with a lowercase letter, is the usual hyphenation signal: the
    hyphen goes ("infor-" + "mation" is "information"). It stays, with no space, for a compound:
    a word that has a hyphen already on either side of the break ("state-of-" + "the-art"), since
    hyphenation never splits such a word elsewhere, or a pair the document also writes hyphenated
    inside a line ("data-driven"). Before a capital or a digit the line joins with a space as
    written ("Anglo- Saxon"): nothing there tells a compound from a broken word."""
    if text.endswith(_SOFT_HYPHEN):
        return text[:-1] + line
    if not (_HYPHEN.fullmatch(text[-1:]) and text[-2:-1].isalpha() and line[:1].islower()):
        return None
    before, after = text.split()[-1][:-1], line.split()[0]
    head, tail = _WORD_END.search(before), _WORD_START.match(after)
    pair = f"{head.group() if head else ''}-{tail.group() if tail else ''}".lower()
    if _HYPHEN.search(before) or _HYPHEN.search(after) or pair in compounds:
        return text + line
    return text[:-1] + line


def _join_lines(lines: list[str], compounds: frozenset[str]) -> str:
    """The lines of one paragraph as one line of text, words broken at line ends joined and
    soft hyphens (invisible break points, U+00AD) dropped, so keyword search finds the words."""
    text = ""
    for line in lines:
        joined = _continues_word(text, line, compounds) if text else None
        text = joined if joined is not None else f"{text} {line}" if text else line
    return " ".join(text.replace(_SOFT_HYPHEN, "").split())


def _sections(pages: list[tuple[int, list[list[_Item]]]], *, fallback_title: str) -> ParsedDocument:
    sizes = [
        i.size for _, cols in pages for col in cols for i in col if i.kind == "line" and i.size
    ]
    body = statistics.median(sizes) if sizes else 0.0
    heading_sizes = sorted({round(s, 1) for s in sizes if body and s >= body * 1.15}, reverse=True)
    level_of = {s: n + 1 for n, s in enumerate(heading_sizes)}
    compounds = _compounds(pages)
    title = ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = [Section(path=())]
    paragraph: list[str] = []
    para_page: int | None = None

    def flush() -> None:
        nonlocal paragraph
        text = _join_lines(paragraph, compounds)
        if text:
            sections[-1].blocks.append(Block(text=text, kind="paragraph", page=para_page))
        paragraph = []

    for number, columns in pages:
        for column in columns:
            last_top: float | None = None
            for item in column:
                if item.kind == "table":
                    flush()
                    table = item.text.replace(_SOFT_HYPHEN, "")
                    sections[-1].blocks.append(Block(text=table, kind="table", page=number))
                    last_top = None
                    continue
                level = level_of.get(round(item.size, 1)) if len(item.text) < 120 else None
                if level is not None:
                    flush()
                    heading = item.text.replace(_SOFT_HYPHEN, "")
                    if level == 1 and not title:
                        title = heading
                        continue
                    path = [(lv, n) for lv, n in path if lv < level] + [(level, heading)]
                    sections.append(Section(path=tuple(n for _, n in path)))
                    continue
                if not item.text or (
                    last_top is not None and item.size and item.top - last_top > item.size * 1.9
                ):
                    flush()
                if item.text:
                    if not paragraph:
                        para_page = number
                    paragraph.append(item.text)
                last_top = item.top
            flush()
    return ParsedDocument(title=title or fallback_title, sections=[s for s in sections if s.blocks])
