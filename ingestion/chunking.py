"""Structure-aware chunking within a token budget.

A chunk never crosses a section boundary, never cuts a sentence or a table row in half, and
repeats a table's header in every piece of a long table. Tokens are counted by the caller's
tokenizer (the embedding model's), because that is the budget that truncates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ingestion.markdown_sections import Block, Section

TokenCounter = Callable[[str], int]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass(frozen=True, slots=True)
class ChunkText:
    section: Section
    text: str
    page: int | None = None
    page_end: int | None = None


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
        return block.text.split("\n\n") if "\n\n" in block.text else [block.text]
    return split_sentences(block.text) or [block.text]


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


def chunk_sections(
    sections: Iterable[Section], *, max_tokens: int, overlap_tokens: int, count: TokenCounter
) -> list[ChunkText]:
    """Pack each section's blocks into chunks of at most ``max_tokens`` (a single unit larger
    than the budget stays whole rather than being cut mid-sentence)."""
    chunks: list[ChunkText] = []
    for section in sections:
        current: list[tuple[str, int | None]] = []
        used = 0
        for block in section.blocks:
            for unit in _units(block, max_tokens, count):
                cost = count(unit)
                if current and used + cost > max_tokens:
                    chunks.append(_piece(section, current))
                    if block.kind == "table":
                        current = []
                    else:
                        kept = _tail([u for u, _ in current], overlap_tokens, count)
                        current = current[len(current) - len(kept) :] if kept else []
                    used = sum(count(u) for u, _ in current)
                    while current and used + cost > max_tokens:  # overlap must leave room
                        used -= count(current.pop(0)[0])
                current.append((unit, block.page))
                used += cost
        if current:
            chunks.append(_piece(section, current))
    return chunks
