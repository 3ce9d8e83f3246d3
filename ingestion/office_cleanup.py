"""Office files as their reader sees them, before unstructured partitions them.

unstructured reads the raw XML: it drops text that Word shows (unaccepted insertions and moves,
content controls, smart tags, simple fields) and keeps text no reader sees (hidden runs, hidden
sheets, rows and columns, hidden slides). For .docx and .xlsx a temporary copy is written with
only the visible text, every other package member copied unchanged; formula results survive
because cells keep their cached values (the workbook is edited as XML, never re-saved by
openpyxl). Hidden slides are dropped after partitioning instead (``hidden_slide_numbers``), so
that the remaining slides keep the numbers PowerPoint shows.
"""

from __future__ import annotations

import posixpath
import shutil
import tempfile
import zipfile
from bisect import bisect_left
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lxml import etree
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter

from ingestion.docx_inline import NOTE_KINDS, inline_notes, inline_text_boxes, notes_of
from ingestion.xlsx_values import NumberFormats, show_formatted_numbers
from ingestion.xml_elements import remove_keeping_tail
from services.errors import InvalidRequestError

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = _R + "/officeDocument"
_NS = {"w": _W, "s": _S, "p": _P, "r": _R, "rel": _PACKAGE_RELS}

# Wrappers whose content Word shows as ordinary text: keep their children, drop the wrapper
# (and the wrapper's own properties element).
_DOCX_UNWRAP = {
    f"{{{_W}}}ins": None,  # tracked insertion, not yet accepted
    f"{{{_W}}}moveTo": None,  # tracked move: the text at its new place
    f"{{{_W}}}smartTag": f"{{{_W}}}smartTagPr",
    f"{{{_W}}}customXml": f"{{{_W}}}customXmlPr",
    f"{{{_W}}}fldSimple": None,  # a simple field shows its last result
    f"{{{_W}}}dir": None,
    f"{{{_W}}}bdo": None,
}
# Tracked deletions and the old place of a move: shown struck through at most, never as text.
_DOCX_DROP = (f"{{{_W}}}del", f"{{{_W}}}moveFrom")
_FALSE = {"0", "false", "off"}
_LAST_COLUMN = 16_384  # XFD, Excel's last column

# No DTDs, no entities, no network: the XML comes from an uploaded file.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)

PartEdits = dict[str, bytes]


@contextmanager
def reader_view(path: Path, doc_type: str) -> Iterator[Path]:
    """``path`` itself, or a temporary copy of a .docx/.xlsx holding only what a reader sees.

    The copy is removed when the block ends."""
    edit = _EDITORS.get(doc_type)
    if edit is None:
        yield path
        return
    with zipfile.ZipFile(path) as archive:
        edits = edit(archive)
    if not edits:
        yield path
        return
    folder = Path(tempfile.mkdtemp(prefix="holdfast-office-"))
    try:
        copy = folder / path.name
        _write_copy(path, copy, edits)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def hidden_slide_numbers(path: Path) -> frozenset[int]:
    """1-based numbers of the slides hidden from the slide show (``show="0"``), counted like
    unstructured's ``page_number``: every slide of the presentation, in order."""
    with zipfile.ZipFile(path) as archive:
        presentation = _main_part(archive)
        slides = _relationship_targets(archive, presentation)
        root = _read_xml(archive, presentation)
        hidden = set()
        for number, slide_id in enumerate(root.iterfind("p:sldIdLst/p:sldId", _NS), start=1):
            part = slides.get(slide_id.get(f"{{{_R}}}id", ""))
            if part and not _is_true(_read_xml(archive, part).get("show", "1")):
                hidden.add(number)
    return frozenset(hidden)


# --- Word -----------------------------------------------------------------------------------


def visible_docx_parts(archive: zipfile.ZipFile) -> PartEdits:
    """The main document part rewritten with only what Word shows, text boxes, footnotes and
    endnotes brought in as paragraphs (``ingestion.docx_inline``), or nothing when it already
    is. Headers and footers are not indexed, so they are left alone."""
    name = _main_part(archive)
    root = _read_xml(archive, name)
    related = _relationships(archive, name)
    hidden_styles = _hidden_character_styles(archive, _related_part(archive, related, "styles"))
    changed = clean_wordprocessing(root, hidden_styles)
    changed = inline_text_boxes(root) or changed
    changed = inline_notes(root, _notes(archive, related, hidden_styles)) or changed
    if not changed:
        return {}
    return {name: _xml_bytes(root)}


def _notes(
    archive: zipfile.ZipFile,
    related: dict[str, tuple[str, str]],
    hidden_styles: frozenset[str],
) -> dict[str, dict[str, list[etree._Element]]]:
    """Reference tag -> note id -> the note's visible paragraphs, from the notes parts the
    document (whose relationships are ``related``) refers to."""
    found: dict[str, dict[str, list[etree._Element]]] = {}
    for reference, kind in NOTE_KINDS.items():
        part = _related_part(archive, related, kind.part)
        if part is None:
            continue
        try:
            notes_root = _read_xml(archive, part)
        except InvalidRequestError:
            continue  # unreadable notes: the document's own text is still indexed
        clean_wordprocessing(notes_root, hidden_styles)
        found[reference] = notes_of(notes_root, kind.note)
    return found


def clean_wordprocessing(root: etree._Element, hidden_styles: frozenset[str] = frozenset()) -> bool:
    """Accept tracked changes, open content controls and drop hidden runs, in place.

    Returns whether anything changed."""
    changed = False
    for element in list(root.iter(*_DOCX_DROP)):
        remove_keeping_tail(element)
        changed = True
    for run in list(root.iter(f"{{{_W}}}r")):
        if _run_is_hidden(run, hidden_styles):
            remove_keeping_tail(run)
            changed = True
    for sdt in list(root.iter(f"{{{_W}}}sdt")):
        content = sdt.find("w:sdtContent", _NS)
        if content is None or sdt.find("w:sdtPr/w:showingPlcHdr", _NS) is not None:
            # placeholder prompts ("Click or tap here to enter text.") are no content
            remove_keeping_tail(sdt)
        else:
            _unwrap(sdt, list(content))
        changed = True
    for wrapper in list(root.iter(*_DOCX_UNWRAP)):
        properties = _DOCX_UNWRAP[wrapper.tag]
        _unwrap(wrapper, [child for child in wrapper if child.tag != properties])
        changed = True
    return changed


def _run_is_hidden(run: etree._Element, hidden_styles: frozenset[str]) -> bool:
    vanish = run.find("w:rPr/w:vanish", _NS)
    if vanish is not None:
        return _is_true(vanish.get(f"{{{_W}}}val", "1"))
    style = run.find("w:rPr/w:rStyle", _NS)
    return style is not None and style.get(f"{{{_W}}}val") in hidden_styles


def _hidden_character_styles(archive: zipfile.ZipFile, styles_part: str | None) -> frozenset[str]:
    """Ids of the styles whose text is hidden (``w:vanish`` on the style or a style it is based
    on), for runs that are hidden by their character style rather than directly."""
    if styles_part is None:
        return frozenset()
    own: dict[str, bool | None] = {}
    based_on: dict[str, str] = {}
    for style in _read_xml(archive, styles_part).iterfind("w:style", _NS):
        style_id = style.get(f"{{{_W}}}styleId")
        if not style_id:
            continue
        vanish = style.find("w:rPr/w:vanish", _NS)
        own[style_id] = None if vanish is None else _is_true(vanish.get(f"{{{_W}}}val", "1"))
        parent = style.find("w:basedOn", _NS)
        if parent is not None and parent.get(f"{{{_W}}}val"):
            based_on[style_id] = str(parent.get(f"{{{_W}}}val"))

    def hidden(style_id: str, seen: frozenset[str] = frozenset()) -> bool:
        value = own.get(style_id)
        if value is not None:
            return value
        parent = based_on.get(style_id)
        return parent is not None and parent not in seen and hidden(parent, seen | {style_id})

    return frozenset(style_id for style_id in own if hidden(style_id))


# --- Excel ----------------------------------------------------------------------------------


def visible_xlsx_parts(archive: zipfile.ZipFile) -> PartEdits:
    """Worksheets rewritten without hidden content: a hidden or very hidden sheet is emptied
    (its place, and so the numbers of the other sheets, stays), hidden rows are removed (not
    those an autofilter hides, ``_filtered_rows``) and
    hidden columns are removed with the cells to their right moved left, as Excel shows them.
    Cells keep their cached values, so formula results stay; a number with a format is written
    as the text the format shows (``ingestion.xlsx_values``)."""
    workbook = _main_part(archive)
    relationships = _relationships(archive, workbook)
    sheets = {rel_id: target for rel_id, (target, _) in relationships.items()}
    workbook_root = _read_xml(archive, workbook)
    styles = _related_part(archive, relationships, "styles")
    formats = NumberFormats.read(_read_xml(archive, styles) if styles else None, workbook_root)
    edits: PartEdits = {}
    for sheet in workbook_root.iterfind("s:sheets/s:sheet", _NS):
        part = sheets.get(sheet.get(f"{{{_R}}}id", ""))
        if not part or part not in archive.namelist():
            continue
        root = _read_xml(archive, part)
        data = root.find("s:sheetData", _NS)
        if data is None:  # a chart sheet or a dialog sheet: no cells
            continue
        if sheet.get("state", "visible") != "visible":
            changed = len(data) > 0
            data.clear()
        else:
            changed = _drop_hidden_rows_and_columns(root, data)
            changed = show_formatted_numbers(data, formats) or changed
        if changed:
            edits[part] = _xml_bytes(root)
    return edits


def _drop_hidden_rows_and_columns(sheet: etree._Element, data: etree._Element) -> bool:
    hidden: set[int] = set()
    for column in sheet.iterfind("s:cols/s:col", _NS):
        if _is_true(column.get("hidden", "0")):  # often "every column after the data"
            first = max(int(column.get("min", "1")), 1)
            last = min(int(column.get("max", "0")), _LAST_COLUMN)
            hidden.update(range(first, last + 1))
    hidden_columns = sorted(hidden)  # for counting the hidden columns left of a cell
    filtered = _filtered_rows(sheet)
    changed = False
    row_number = 0
    for row in list(data.iterfind("s:row", _NS)):
        row_number = int(row.get("r") or row_number + 1)
        row.set("r", str(row_number))  # explicit: a removed row must not renumber the next ones
        if _is_true(row.get("hidden", "0")) and row_number not in filtered:
            data.remove(row)
            changed = True
            continue
        if hidden_columns:
            changed |= _collapse_hidden_cells(row, row_number, hidden, hidden_columns)
    return changed


def _filtered_rows(sheet: etree._Element) -> range:
    """The data rows of the sheet's autofilter when a filter is set on it. A row a filter hides
    is the reader's current view, not hidden content: the filter's buttons show, and clearing
    it shows the row; so it is indexed."""
    autofilter = sheet.find("s:autoFilter", _NS)
    if autofilter is None or autofilter.find("s:filterColumn", _NS) is None:
        return range(0)
    try:
        first, _, last = (autofilter.get("ref") or "").partition(":")
        top = coordinate_from_string(first)[1]
        bottom = coordinate_from_string(last or first)[1]
    except ValueError:
        return range(0)
    return range(top + 1, bottom + 1)  # the header row is never filtered out


def _collapse_hidden_cells(
    row: etree._Element, row_number: int, hidden: set[int], hidden_columns: list[int]
) -> bool:
    """Remove the row's cells in hidden columns and move the others left over the gap."""
    changed = False
    column = 0
    for cell in list(row.iterfind("s:c", _NS)):
        reference = cell.get("r")
        column = (
            column_index_from_string(coordinate_from_string(reference)[0])
            if reference
            else column + 1
        )
        if column in hidden:
            row.remove(cell)
            changed = True
            continue
        shift = bisect_left(hidden_columns, column)  # hidden columns to its left
        if shift or not reference:
            cell.set("r", f"{get_column_letter(column - shift)}{row_number}")
            changed = True
    if changed:
        row.attrib.pop("spans", None)  # a hint of the row's column range, now stale
    return changed


# --- package plumbing -----------------------------------------------------------------------

_EDITORS: dict[str, Callable[[zipfile.ZipFile], PartEdits]] = {
    "docx": visible_docx_parts,
    "xlsx": visible_xlsx_parts,
}


def _read_xml(archive: zipfile.ZipFile, name: str) -> etree._Element:
    try:
        return etree.fromstring(archive.read(name), _PARSER)
    except (KeyError, etree.XMLSyntaxError) as exc:
        raise InvalidRequestError(f"malformed Office file ({name} unreadable)") from exc


def _xml_bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True))


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (target part name, relationship type) of ``part`` (internal only)."""
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", f"{name}.rels")
    if rels_name not in archive.namelist():
        return {}
    found = {}
    for rel in _read_xml(archive, rels_name).iterfind("rel:Relationship", _NS):
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found[rel.get("Id", "")] = (posixpath.normpath(resolved), rel.get("Type", ""))
    return found


def _related_part(
    archive: zipfile.ZipFile, related: dict[str, tuple[str, str]], kind: str
) -> str | None:
    """The part of relationship type ``kind`` (its last segment: ``styles``, ``footnotes``)
    among ``related`` (``_relationships``), if the package holds it."""
    return next(
        (
            target
            for target, rel_type in related.values()
            if rel_type.rsplit("/", 1)[-1] == kind and target in archive.namelist()
        ),
        None,
    )


def _relationship_targets(archive: zipfile.ZipFile, part: str) -> dict[str, str]:
    return {rel_id: target for rel_id, (target, _) in _relationships(archive, part).items()}


def _main_part(archive: zipfile.ZipFile) -> str:
    """The package's main part (word/document.xml, xl/workbook.xml, ppt/presentation.xml, or
    wherever ``_rels/.rels`` says it is)."""
    for target, kind in _relationships(archive, "").values():
        if kind == _OFFICE_DOCUMENT:
            return target
    raise InvalidRequestError("malformed Office file (no main document part)")


def _write_copy(source: Path, target: Path, edits: PartEdits) -> None:
    with zipfile.ZipFile(source) as reading, zipfile.ZipFile(target, "w") as writing:
        for info in reading.infolist():
            writing.writestr(info, edits.get(info.filename) or reading.read(info))


def _unwrap(element: etree._Element, children: list[etree._Element]) -> None:
    """Put ``children`` where ``element`` is, then remove it (keeping the text after it)."""
    parent = element.getparent()
    if parent is None:
        return
    index = parent.index(element)
    for offset, child in enumerate(children):
        parent.insert(index + offset, child)
    remove_keeping_tail(element)


def _is_true(value: str) -> bool:
    return value.strip().lower() not in _FALSE
