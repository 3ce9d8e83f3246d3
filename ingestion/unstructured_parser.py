"""Office, web and mail formats through unstructured's partitioners, turned into sections.

Titles give the heading path (by ``category_depth``), tables keep their rows (as Markdown, from
``text_as_html``), page numbers (pages, slides, sheets) come from element metadata. The
partitioners are chosen per format, never ``auto`` (which can pull in layout models).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingestion.markdown_sections import Block, ParsedDocument, Section
from ingestion.office_cleanup import hidden_slide_numbers, reader_view
from ingestion.slide_notes import speaker_notes, with_speaker_notes
from ingestion.tables import html_table_to_markdown

_LIST_TYPES = {"ListItem"}
_CODE_TYPES = {"CodeSnippet"}
_PILCROW_END = re.compile(r"\s*¶\s*$")
_SKIP_TYPES = {"PageBreak", "Header", "Footer", "PageNumber", "Image", "FigureCaption"}


def _partitioner(doc_type: str) -> Callable[..., list[Any]]:
    if doc_type == "docx":
        from unstructured.partition.docx import partition_docx

        return partition_docx
    if doc_type == "pptx":
        from unstructured.partition.pptx import partition_pptx

        return partition_pptx
    if doc_type == "xlsx":
        from unstructured.partition.xlsx import partition_xlsx

        return partition_xlsx
    if doc_type == "csv":
        from unstructured.partition.csv import partition_csv

        return partition_csv
    if doc_type == "html":  # the whole page; parse_with_unstructured keeps the main content
        from unstructured.partition.html import partition_html

        return partition_html
    if doc_type == "email":
        from unstructured.partition.email import partition_email

        return partition_email
    from unstructured.partition.text import partition_text

    return partition_text


def partition(path: Path, doc_type: str) -> list[Any]:
    """The file's elements as its reader sees them: Office text that Word, Excel or PowerPoint
    hides is left out and text they show is kept (``ingestion.office_cleanup``), a slide's
    speaker notes included (``ingestion.slide_notes``)."""
    kwargs: dict[str, Any] = {}
    if doc_type == "xlsx":
        kwargs["find_subtable"] = False
    if doc_type == "email":
        kwargs["process_attachments"] = False
    with reader_view(path, doc_type) as visible:
        elements = list(_partitioner(doc_type)(filename=str(visible), **kwargs))
    if doc_type == "pptx":
        hidden = hidden_slide_numbers(path)
        elements = [e for e in elements if getattr(e.metadata, "page_number", None) not in hidden]
        notes = {n: text for n, text in speaker_notes(path).items() if n not in hidden}
        elements = with_speaker_notes(elements, notes)
    return elements


def _email_subject(path: Path) -> str:
    import email
    from email import policy

    with path.open("rb") as fh:
        message = email.message_from_binary_file(fh, policy=policy.default)
    return str(message.get("subject") or "").strip()


def heading_text(text: str) -> str:
    """A heading without the permalink mark (``¶``) that some generators end it with."""
    return _PILCROW_END.sub("", text)


def _is_heading(element: Any, doc_type: str) -> bool:
    """Whether a ``Title`` element is a heading. A slide's heading is its title shape's first
    line (depth 0); unstructured also calls short body lines and bullets ``Title`` (depth 1
    and more), and they are body text."""
    if doc_type in {"xlsx", "email", "text", "csv"}:  # no real headings in these
        return False
    if doc_type == "pptx":
        return int(getattr(element.metadata, "category_depth", 0) or 0) == 0
    return True


def _keep_empty_headings(
    sections: list[Section], levels: list[int], pages: list[int | None]
) -> None:
    """A heading with nothing under it before the next heading of its level or higher (a title-only
    slide, a line styled as a heading) keeps its text as a paragraph of its section instead of
    vanishing with the empty section. Not for HTML: there an empty heading is page structure
    whose content is elsewhere or was boilerplate ("Description" on a generated API page)."""
    for i, section in enumerate(sections):
        deeper_follows = i + 1 < len(sections) and levels[i + 1] > levels[i]
        if section.path and not section.blocks and not deeper_follows:
            section.blocks.append(Block(text=section.path[-1], kind="paragraph", page=pages[i]))


def elements_to_document(
    elements: list[Any], *, fallback_title: str, doc_type: str, title_is_known: bool = False
) -> ParsedDocument:
    """Sections from partitioned elements. With ``title_is_known`` the fallback title is the
    title and no heading is taken for it. Each slide of a presentation is its own section."""
    title = fallback_title if title_is_known else ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = [Section(path=())]
    levels: list[int] = [0]  # heading level of each section; 0 for text under no heading
    pages: list[int | None] = [None]
    slide: int | None = None
    for position, element in enumerate(elements):
        kind = type(element).__name__
        meta = element.metadata
        page = getattr(meta, "page_number", None)
        text = (element.text or "").strip()
        if kind in _SKIP_TYPES or not (text or kind == "Table"):
            continue
        if doc_type == "pptx" and page != slide:
            slide = page
            if not (kind == "Title" and _is_heading(element, doc_type)):  # a slide with no title
                path = []
                sections.append(Section(path=()))
                levels.append(0)
                pages.append(page)
        if kind == "Title" and _is_heading(element, doc_type):
            text = heading_text(text)
            level = int(getattr(meta, "category_depth", 0) or 0) + 1
            if level == 1 and not title and position == 0 and doc_type != "pptx":
                title = text
                continue
            path = [(lv, n) for lv, n in path if lv < level] + [(level, text)]
            sections.append(Section(path=tuple(n for _, n in path)))
            levels.append(level)
            pages.append(page)
            continue
        if kind == "Title":
            sections[-1].blocks.append(
                Block(text=" ".join(text.split()), kind="paragraph", page=page)
            )
            continue
        if kind == "Table":
            html = getattr(meta, "text_as_html", None)
            table = html_table_to_markdown(html) if html else ""
            if table:
                sections[-1].blocks.append(Block(text=table, kind="table", page=page))
            elif text:
                sections[-1].blocks.append(Block(text=text, kind="paragraph", page=page))
            continue
        if kind in _CODE_TYPES:  # whitespace is meaning in code: keep the lines as they are
            code = textwrap.dedent((element.text or "").strip("\n")).rstrip()
            sections[-1].blocks.append(Block(text=code, kind="code", page=page))
            continue
        block_kind = "list" if kind in _LIST_TYPES else "paragraph"
        body = f"- {text}" if block_kind == "list" else " ".join(text.split())
        sections[-1].blocks.append(Block(text=body, kind=block_kind, page=page))
    if doc_type != "html":
        _keep_empty_headings(sections, levels, pages)
    return ParsedDocument(title=title or fallback_title, sections=[s for s in sections if s.blocks])


def parse_with_unstructured(path: Path, doc_type: str, *, fallback_title: str) -> ParsedDocument:
    if doc_type == "html":
        from ingestion.html_parser import parse_html  # imports this module: no import cycle at load

        return parse_html(path, fallback_title=fallback_title)
    elements = partition(path, doc_type)
    if doc_type == "email":
        fallback_title = _email_subject(path) or fallback_title
    return elements_to_document(elements, fallback_title=fallback_title, doc_type=doc_type)
