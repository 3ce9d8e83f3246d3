"""Markdown to sections: headings give the section path, block elements stay whole.

Blocks are cut from the source text by markdown-it's line maps, so a table or a list keeps its
Markdown form instead of being flattened. What the rendered file does not show is not kept: HTML
comments (drafting notes, "TODO: ask legal") and hidden HTML elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingestion.boilerplate import visible_fragment
from ingestion.front_matter import split_front_matter

_BLOCK_OPENERS = {
    "paragraph_open",
    "bullet_list_open",
    "ordered_list_open",
    "blockquote_open",
    "table_open",
    "fence",
    "code_block",
    "html_block",
}


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    kind: str  # paragraph | list | table | code | quote | html
    page: int | None = None  # 1-based page (or slide, sheet) where the format has pages


@dataclass(slots=True)
class Section:
    path: tuple[str, ...]
    blocks: list[Block] = field(default_factory=list)

    @property
    def heading(self) -> str:
        return " > ".join(self.path)


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    sections: list[Section]


def _kind(token_type: str) -> str:
    return {
        "bullet_list_open": "list",
        "ordered_list_open": "list",
        "table_open": "table",
        "fence": "code",
        "code_block": "code",
        "blockquote_open": "quote",
        "html_block": "html",
    }.get(token_type, "paragraph")


def _without_comments(text: str, inline: Token) -> str:
    """A paragraph's source without the HTML comments markdown-it found in it (a comment
    written inside a code span is code, not a comment, and stays)."""
    for child in inline.children or []:
        if child.type == "html_inline" and child.content.startswith("<!--"):
            text = text.replace(child.content, "", 1)
    return text


def parse_markdown(text: str, *, fallback_title: str) -> ParsedDocument:
    """Split Markdown into sections by heading; the first H1 (else the front matter's title,
    else the fallback) is the title. Front matter is never indexed (``ingestion.front_matter``)."""
    front_title, text = split_front_matter(text)
    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    path: list[tuple[int, str]] = []
    sections: list[Section] = [Section(path=())]
    title = ""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.level != 0 or token.map is None:
            i += 1
            continue
        if token.type == "heading_open":
            level = int(token.tag[1:])
            heading = tokens[i + 1].content.strip()
            if level == 1 and not title:
                title = heading
            path = [(lvl, name) for lvl, name in path if lvl < level] + [(level, heading)]
            # The document title is the title, not a section: keep it out of section paths.
            sections.append(
                Section(path=tuple(n for lvl, n in path if not (lvl == 1 and n == title)))
            )
        elif token.type in _BLOCK_OPENERS:
            start, end = token.map
            block_text = "\n".join(lines[start:end]).strip()
            if token.type == "paragraph_open":  # reflow: hard line breaks carry no meaning
                block_text = " ".join(_without_comments(block_text, tokens[i + 1]).split())
            elif token.type == "html_block":
                block_text = visible_fragment(block_text)
            if block_text:
                sections[-1].blocks.append(Block(text=block_text, kind=_kind(token.type)))
        i += 1
    return ParsedDocument(
        title=title or front_title or fallback_title,
        sections=[s for s in sections if s.blocks],
    )
