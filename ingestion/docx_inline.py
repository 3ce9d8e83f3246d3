"""Word text that a reader sees and unstructured does not read: text boxes, footnotes, endnotes.

unstructured reads a paragraph's own runs (through python-docx), so the paragraphs inside a text
box (``w:txbxContent``, anchored in a drawing of some run) and the notes kept in their own parts
(``word/footnotes.xml``, ``word/endnotes.xml``) were never indexed: a callout box with the one
number that matters, or the footnote that carries a policy's exception. Here they become
ordinary paragraphs of the document, placed after the paragraph that holds them or refers to
them, so that they land in the same section (and usually the same chunk):

- a text box's paragraphs, as they are; of a shape written twice for old readers
  (``mc:AlternateContent``: a DrawingML choice and a VML fallback) only the choice is read,
  and a shape set not to show is dropped with its text (hidden text is where instructions
  for a model get planted);
- each note's paragraphs, the first opening with ``Footnote 1:`` (numbered in the order the
  document refers to them, as Word numbers them), and the reference mark in the text becomes
  ``[1]``. Separator "notes" (Word's rule above the notes) have no reference and stay out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from lxml import etree

from ingestion.xml_elements import remove_keeping_tail

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
WP = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
V = "urn:schemas-microsoft-com:vml"
_P = f"{{{W}}}p"
_TEXT_BOX = f"{{{W}}}txbxContent"
_ALTERNATE = f"{{{MC}}}AlternateContent"
_FALLBACK = f"{{{MC}}}Fallback"
_SHAPES = (f"{{{W}}}drawing", f"{{{W}}}pict", f"{{{W}}}object")


class NoteKind(NamedTuple):
    note: str  # the note element's tag in its part
    label: str  # how an inlined note opens
    part: str  # the type of the document's relationship to its notes part


#: reference element's tag -> its kind of note
NOTE_KINDS = {
    f"{{{W}}}footnoteReference": NoteKind(f"{{{W}}}footnote", "Footnote", "footnotes"),
    f"{{{W}}}endnoteReference": NoteKind(f"{{{W}}}endnote", "Endnote", "endnotes"),
}


def inline_text_boxes(root: etree._Element) -> bool:
    """Move every text box's paragraphs after the paragraph that anchors it, and drop the
    shape. Returns whether anything changed."""
    changed = False
    for box in list(root.iter(_TEXT_BOX)):
        if _ancestor(box, _FALLBACK) is not None or not _inside(box, root):
            continue  # the VML copy of a shape, or a box in a shape already dropped
        anchor = _ancestor(box, _P)
        shape = _ancestor(box, _ALTERNATE)
        if shape is None:
            shape = _outermost(box, _SHAPES)
        if anchor is None or shape is None:
            continue
        if not _is_hidden(shape):
            _insert_after(anchor, [p for p in box if p.tag == _P])
        remove_keeping_tail(shape)
        changed = True
    return changed


def notes_of(part: etree._Element, note_tag: str) -> dict[str, list[etree._Element]]:
    """A notes part's notes by id: their paragraphs (separators and empty notes left out)."""
    found: dict[str, list[etree._Element]] = {}
    for note in part.iter(note_tag):
        if note.get(f"{{{W}}}type") not in (None, "normal"):
            continue  # separator, continuationSeparator, continuationNotice
        paragraphs = [p for p in note if p.tag == _P and _text(p).strip()]
        if paragraphs:
            found[note.get(f"{{{W}}}id", "")] = paragraphs
    return found


def inline_notes(
    root: etree._Element, notes: Mapping[str, Mapping[str, Sequence[etree._Element]]]
) -> bool:
    """Put each referenced note's paragraphs after the paragraph that refers to it (``notes``:
    reference tag -> note id -> paragraphs), and write the reference mark as ``[n]``. Returns
    whether anything changed."""
    numbers = {tag: 0 for tag in NOTE_KINDS}
    changed = False
    for reference in list(root.iter(*NOTE_KINDS)):
        paragraphs = notes.get(reference.tag, {}).get(reference.get(f"{{{W}}}id", ""))
        anchor = _ancestor(reference, _P)
        if not paragraphs or anchor is None:
            continue
        numbers[reference.tag] += 1
        number = numbers[reference.tag]
        label = NOTE_KINDS[reference.tag].label
        copies = [etree.fromstring(etree.tostring(p)) for p in paragraphs]
        copies[0].insert(_first_run_index(copies[0]), _run(f"{label} {number}: "))
        _insert_after(anchor, copies)
        run = reference.getparent()
        if run is not None:
            run.replace(reference, _text_element(f"[{number}]"))
        changed = True
    return changed


def _ancestor(element: etree._Element, tag: str) -> etree._Element | None:
    parent = element.getparent()
    while parent is not None and parent.tag != tag:
        parent = parent.getparent()
    return parent


def _is_hidden(shape: etree._Element) -> bool:
    """A shape set not to show (Selection pane's eye: ``wp:docPr hidden``; VML's
    ``visibility:hidden``): its text is dropped, as Word's other hidden text is."""
    for properties in shape.iter(f"{{{WP}}}docPr"):
        if properties.get("hidden", "").lower() in ("1", "true", "on"):
            return True
    return any(
        "visibility:hidden" in (element.get("style") or "").replace(" ", "").lower()
        for element in shape.iter()
        if isinstance(element.tag, str) and element.tag.startswith(f"{{{V}}}")
    )


def _inside(element: etree._Element, root: etree._Element) -> bool:
    top = element
    while top.getparent() is not None:
        top = top.getparent()
    return top is root


def _outermost(element: etree._Element, tags: Iterable[str]) -> etree._Element | None:
    wanted, found = set(tags), None
    parent = element.getparent()
    while parent is not None:
        if parent.tag in wanted:
            found = parent
        parent = parent.getparent()
    return found


def _insert_after(anchor: etree._Element, paragraphs: Sequence[etree._Element]) -> None:
    parent = anchor.getparent()
    if parent is None:
        return
    index = parent.index(anchor)
    for offset, paragraph in enumerate(paragraphs, start=1):
        parent.insert(index + offset, paragraph)


def _first_run_index(paragraph: etree._Element) -> int:
    """Where a paragraph's content starts: after its properties (``w:pPr``), if any."""
    return 1 if len(paragraph) and paragraph[0].tag == f"{{{W}}}pPr" else 0


def _text_element(text: str) -> etree._Element:
    element = etree.Element(f"{{{W}}}t")
    element.text = text
    element.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
    return element


def _run(text: str) -> etree._Element:
    run = etree.Element(f"{{{W}}}r")
    run.append(_text_element(text))
    return run


def _text(paragraph: etree._Element) -> str:
    return "".join(t.text or "" for t in paragraph.iter(f"{{{W}}}t"))
