"""Tree edits shared by the HTML and Office readers (lxml)."""

from __future__ import annotations

from lxml import etree


def remove_keeping_tail(element: etree._Element) -> None:
    """Remove ``element`` but keep the text that follows it (its tail belongs to the parent)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    parent.remove(element)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
