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
    kwargs: dict[str, Any] = {"filename": str(path)}
    if doc_type == "xlsx":
        kwargs["find_subtable"] = False
    if doc_type == "email":
        kwargs["process_attachments"] = False
    return _partitioner(doc_type)(**kwargs)


def _email_subject(path: Path) -> str:
    import email
    from email import policy

    with path.open("rb") as fh:
        message = email.message_from_binary_file(fh, policy=policy.default)
    return str(message.get("subject") or "").strip()


def heading_text(text: str) -> str:
    """A heading without the permalink mark (``¶``) that some generators end it with."""
    return _PILCROW_END.sub("", text)


def elements_to_document(
    elements: list[Any], *, fallback_title: str, doc_type: str, title_is_known: bool = False
) -> ParsedDocument:
    """Sections from partitioned elements. With ``title_is_known`` the fallback title is the
    title and no heading is taken for it."""
    title = fallback_title if title_is_known else ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = [Section(path=())]
    for position, element in enumerate(elements):
        kind = type(element).__name__
        meta = element.metadata
        page = getattr(meta, "page_number", None)
        text = (element.text or "").strip()
        if kind in _SKIP_TYPES or not (text or kind == "Table"):
            continue
        if kind == "Title":
            text = heading_text(text)
            level = int(getattr(meta, "category_depth", 0) or 0) + 1
            if doc_type in {"xlsx", "email", "text", "csv"}:  # no real headings in these
                sections[-1].blocks.append(Block(text=text, kind="paragraph", page=page))
                continue
            if level == 1 and not title and position == 0 and doc_type != "pptx":
                title = text
                continue
            path = [(lv, n) for lv, n in path if lv < level] + [(level, text)]
            sections.append(Section(path=tuple(n for _, n in path)))
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
    return ParsedDocument(title=title or fallback_title, sections=[s for s in sections if s.blocks])


def parse_with_unstructured(path: Path, doc_type: str, *, fallback_title: str) -> ParsedDocument:
    if doc_type == "html":
        from ingestion.html_parser import parse_html  # imports this module: no import cycle at load

        return parse_html(path, fallback_title=fallback_title)
    elements = partition(path, doc_type)
    if doc_type == "email":
        fallback_title = _email_subject(path) or fallback_title
    return elements_to_document(elements, fallback_title=fallback_title, doc_type=doc_type)
