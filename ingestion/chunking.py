"""Structure-aware chunking within a token budget.

A chunk never crosses a section boundary, never cuts a sentence or a table row in half, and
repeats a table's header in every piece of a long table; a code block is cut at blank lines,
and only when a piece is still too long, between lines. Tokens are counted by the caller's
tokenizer (the embedding model's), because that is the budget that truncates.

The budget covers what the embedding model reads: the chunk's title and section path (the
``prefix`` of its section) and its body. ``window_budget`` turns a configured budget and the
model's window into the tokens a chunk may use.

No chunk is only noise: a block that is only navigation words ("Prev | Up | Next | Home",
"Table of Contents", "Show Source") or has no letter or digit is dropped before packing (code
blocks excepted, where "}" is part of the code), and a chunk with no letter or digit is never
made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingestion.markdown_sections import Block, Section

TokenCounter = Callable[[str], int]
SectionPrefix = Callable[[Section], str]

# Special tokens a BERT-style encoder adds around the text ([CLS] ... [SEP]); token counters here
# count the text alone.
SPECIAL_TOKENS = 2

# Words of navigation chrome. A block made of these words only is navigation, whatever the site.
NAVIGATION_WORDS = frozenset(
    """
    prev previous next up home top back index modules contents content table of toc
    skip to main jump navigation nav menu breadcrumb search quick go this page topic
    show hide source view edit on github report a bug print permalink link links
    toggle sidebar theme auto light dark mode copy copied expand collapse all close open
    """.split()  # noqa: SIM905 - a word list reads better as words
)
_WORD = re.compile(r"[^\W_]+")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True, slots=True)
class ChunkText:
    section: Section
    text: str
    page: int | None = None
    page_end: int | None = None


def is_noise(text: str) -> bool:
    """True when ``text`` holds no letter or digit, or only navigation words."""
    found = _WORD.findall(text.lower())
    return not found or all(word in NAVIGATION_WORDS for word in found)


def has_words(text: str) -> bool:
    return _WORD.search(text) is not None


def window_budget(max_tokens: int, window_tokens: int | None) -> int:
    """Tokens a chunk may use, title and section path included: the configured budget, never
    more than the embedding model's window (less the special tokens it adds) when known."""
    if window_tokens is None:
        return max_tokens
    return max(1, min(max_tokens, window_tokens - SPECIAL_TOKENS))


def split_sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _table_pieces(block: Block, budget: int, count: TokenCounter) -> list[str]:
    rows = block.text.splitlines()
    header, body = rows[:2], rows[2:]
    pieces: list[str] = []
    current: list[str] = []
    for row in body:
        candidate = "\n".join([*header, *current, row])
        if current and count(candidate) > budget:
            pieces.append("\n".join([*header, *current]))
            current = []
        current.append(row)
    pieces.append("\n".join([*header, *current]))
    return pieces


def _units(block: Block, budget: int, count: TokenCounter) -> list[str]:
    """The smallest pieces a block may be cut into: itself, its sentences, or its table rows."""
    if count(block.text) <= budget:
        return [block.text]
    if block.kind == "table":
        return _table_pieces(block, budget, count)
    if block.kind in {"code", "html"}:
        pieces = block.text.split("\n\n") if "\n\n" in block.text else [block.text]
        return [line for piece in pieces for line in _line_groups(piece, budget, count)]
    return split_sentences(block.text) or [block.text]


def _line_groups(text: str, budget: int, count: TokenCounter) -> list[str]:
    """``text`` whole when it fits, else runs of whole lines that fit (a line longer than the
    budget stays whole)."""
    if count(text) <= budget or "\n" not in text:
        return [text]
    groups: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if current and count("\n".join([*current, line])) > budget:
            groups.append("\n".join(current))
            current = []
        current.append(line)
    groups.append("\n".join(current))
    return groups


def _tail(units: list[str], overlap: int, count: TokenCounter) -> list[str]:
    """The trailing whole sentences of ``units`` that fit in ``overlap`` tokens."""
    kept: list[str] = []
    used = 0
    for unit in reversed(units):
        cost = count(unit)
        if used + cost > overlap:
            break
        kept.insert(0, unit)
        used += cost
    return kept


def _piece(section: Section, units: list[tuple[str, int | None]]) -> ChunkText:
    pages = [p for _, p in units if p is not None]
    return ChunkText(
        section,
        "\n\n".join(u for u, _ in units),
        min(pages) if pages else None,
        max(pages) if pages else None,
    )


def _body_budget(
    section: Section, max_tokens: int, prefix: SectionPrefix | None, count: TokenCounter
) -> int:
    """What is left for the body once the section's prefix is paid for; a prefix never takes
    more than half (a very deep or long heading path is cut by the model instead)."""
    if prefix is None:
        return max_tokens
    heading = prefix(section)
    cost = count(heading) if heading else 0
    return max(max_tokens - cost, max_tokens // 2, 1)


def chunk_sections(
    sections: Iterable[Section],
    *,
    max_tokens: int,
    overlap_tokens: int,
    count: TokenCounter,
    prefix: SectionPrefix | None = None,
) -> list[ChunkText]:
    """Pack each section's blocks into chunks of at most ``max_tokens``, the section's
    ``prefix`` (the title and section path the embedding model reads first) included. A single
    unit larger than the budget stays whole rather than being cut mid-sentence. Noise blocks are
    skipped and chunks without a word are dropped (see the module docstring)."""
    chunks: list[ChunkText] = []
    for section in sections:
        budget = _body_budget(section, max_tokens, prefix, count)
        current: list[tuple[str, int | None]] = []
        used = 0
        for block in section.blocks:
            if block.kind != "code" and is_noise(block.text):
                continue
            for unit in _units(block, budget, count):
                cost = count(unit)
                if current and used + cost > budget:
                    chunks.append(_piece(section, current))
                    if block.kind == "table":
                        current = []
                    else:
                        kept = _tail([u for u, _ in current], overlap_tokens, count)
                        current = current[len(current) - len(kept) :] if kept else []
                    used = sum(count(u) for u, _ in current)
                    while current and used + cost > budget:  # overlap must leave room
                        used -= count(current.pop(0)[0])
                current.append((unit, block.page))
                used += cost
        if current:
            chunks.append(_piece(section, current))
    return [chunk for chunk in chunks if has_words(chunk.text)]
