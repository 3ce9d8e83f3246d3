"""HTML pages to sections: the main content only (``ingestion.boilerplate``), partitioned by
unstructured, with the page title taken from the page's top heading.

The title is the text of the first heading of the main content when no other text comes before it
and no heading of a higher level follows (DocBook pages of a chapter start at ``<h2>``, Sphinx
pages at ``<h1>``); otherwise the ``<title>``; otherwise the file name. The title is not repeated
in the section paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingestion.boilerplate import extract_main
from ingestion.markdown_sections import ParsedDocument
from ingestion.unstructured_parser import elements_to_document, heading_text


def partition_main_html(raw: bytes | str) -> tuple[list[Any], str]:
    """unstructured's elements of the page's main content, and the page's ``<title>``."""
    from unstructured.partition.html import partition_html

    main = extract_main(raw)
    return list(partition_html(text=main.html)), main.title


def _top_title(elements: list[Any]) -> tuple[str, int] | None:
    """The first element's text and depth when it is a heading no later heading outranks."""
    texts = [e for e in elements if (e.text or "").strip() or type(e).__name__ == "Table"]
    if not texts or type(texts[0]).__name__ != "Title":
        return None
    first_depth = int(getattr(texts[0].metadata, "category_depth", 0) or 0)
    for element in texts[1:]:
        if type(element).__name__ == "Title":
            depth = int(getattr(element.metadata, "category_depth", 0) or 0)
            if depth <= first_depth:
                return None
    return heading_text(" ".join(texts[0].text.split())), first_depth


def html_elements_to_document(
    elements: list[Any], *, page_title: str, fallback_title: str
) -> ParsedDocument:
    top = _top_title(elements)
    if top is not None:
        title, _ = top
        first = next(e for e in elements if (e.text or "").strip())
        rest = [e for e in elements if e is not first]
        return elements_to_document(
            rest, fallback_title=title, doc_type="html", title_is_known=True
        )
    return elements_to_document(
        elements, fallback_title=page_title or fallback_title, doc_type="html", title_is_known=True
    )


def parse_html(path: Path, *, fallback_title: str) -> ParsedDocument:
    elements, page_title = partition_main_html(path.read_bytes())
    return html_elements_to_document(elements, page_title=page_title, fallback_title=fallback_title)
