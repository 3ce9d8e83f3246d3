"""chunk_sections: budgets, section boundaries, table pieces, sentence cuts and overlap."""

from __future__ import annotations

import pytest

from ingestion.chunking import chunk_sections, split_sentences
from ingestion.markdown_sections import Block, Section

pytestmark = pytest.mark.unit


def words(text: str) -> int:
    return len(text.split())


def sentence(tag: str, n_words: int) -> str:
    """A sentence of exactly ``n_words`` words, starting with a capital, ending with a period."""
    return " ".join([f"S{tag}"] + [f"w{tag}x{i}" for i in range(n_words - 1)]) + "."


def paragraph_section(*sentences: str, path: tuple[str, ...] = ("P",)) -> Section:
    return Section(path=path, blocks=[Block(" ".join(sentences), "paragraph")])


def units_of(chunk_text: str) -> list[str]:
    return chunk_text.split("\n\n")


def test_budget_is_respected_when_every_unit_fits() -> None:
    blocks = [Block(f"Para {i} has five words.", "paragraph") for i in range(9)]
    chunks = chunk_sections([Section(("A",), blocks)], max_tokens=12, overlap_tokens=0, count=words)
    assert len(chunks) == 5
    assert all(words(c.text) <= 12 for c in chunks)
    assert [u for c in chunks for u in units_of(c.text)] == [b.text for b in blocks]


def test_a_chunk_never_crosses_a_section_boundary() -> None:
    first = Section(("A",), [Block("Alpha text.", "paragraph")])
    second = Section(("B",), [Block("Beta text.", "paragraph")])
    chunks = chunk_sections([first, second], max_tokens=100, overlap_tokens=10, count=words)
    assert [(c.section.path, c.text) for c in chunks] == [
        (("A",), "Alpha text."),
        (("B",), "Beta text."),
    ]


def test_overlap_never_carries_text_into_the_next_section() -> None:
    first = paragraph_section(*(sentence(str(i), 4) for i in range(6)), path=("A",))
    second = paragraph_section(sentence("Z", 4), path=("B",))
    chunks = chunk_sections([first, second], max_tokens=8, overlap_tokens=4, count=words)
    assert chunks[-1].section.path == ("B",)
    assert chunks[-1].text == sentence("Z", 4)


TABLE_HEADER = ["| Name | Value |", "|---|---|"]
TABLE_ROWS = [f"| row{i} | val{i} |" for i in range(10)]


def long_table() -> Block:
    return Block("\n".join(TABLE_HEADER + TABLE_ROWS), "table")


def test_long_table_pieces_each_repeat_the_header_rows() -> None:
    # header = 6 tokens, each row = 5: a 20-token budget holds the header and two rows
    chunks = chunk_sections(
        [Section(("T",), [long_table()])], max_tokens=20, overlap_tokens=0, count=words
    )
    assert len(chunks) == 5
    for chunk in chunks:
        lines = chunk.text.splitlines()
        assert lines[:2] == TABLE_HEADER
        assert words(chunk.text) <= 20


def test_table_is_never_split_mid_row() -> None:
    chunks = chunk_sections(
        [Section(("T",), [long_table()])], max_tokens=20, overlap_tokens=0, count=words
    )
    body_lines = [line for c in chunks for line in c.text.splitlines()[2:]]
    assert body_lines == TABLE_ROWS  # every row whole, in order, exactly once


def test_table_pieces_do_not_overlap_even_with_an_overlap_budget() -> None:
    chunks = chunk_sections(
        [Section(("T",), [long_table()])], max_tokens=20, overlap_tokens=15, count=words
    )
    body_lines = [line for c in chunks for line in c.text.splitlines()[2:]]
    assert body_lines == TABLE_ROWS


def test_table_that_fits_stays_one_block() -> None:
    table = Block("\n".join(TABLE_HEADER + TABLE_ROWS[:2]), "table")
    chunks = chunk_sections(
        [Section(("T",), [table])], max_tokens=50, overlap_tokens=0, count=words
    )
    assert [c.text for c in chunks] == [table.text]


def test_long_paragraph_is_split_at_sentence_ends_only() -> None:
    sentences = [sentence(str(i), 4) for i in range(7)]
    chunks = chunk_sections(
        [paragraph_section(*sentences)], max_tokens=10, overlap_tokens=0, count=words
    )
    assert len(chunks) > 1
    pieces = [u for c in chunks for u in units_of(c.text)]
    assert pieces == sentences
    assert all(c.text.endswith(".") for c in chunks)


def test_overlap_carries_trailing_sentences_into_the_next_chunk() -> None:
    s = [sentence(str(i), 4) for i in range(6)]
    chunks = chunk_sections([paragraph_section(*s)], max_tokens=12, overlap_tokens=4, count=words)
    assert [units_of(c.text) for c in chunks] == [
        [s[0], s[1], s[2]],
        [s[2], s[3], s[4]],
        [s[4], s[5]],
    ]


def test_zero_overlap_repeats_nothing() -> None:
    s = [sentence(str(i), 4) for i in range(6)]
    chunks = chunk_sections([paragraph_section(*s)], max_tokens=12, overlap_tokens=0, count=words)
    assert [units_of(c.text) for c in chunks] == [[s[0], s[1], s[2]], [s[3], s[4], s[5]]]


def test_overlap_never_pushes_a_chunk_over_budget_when_units_fit() -> None:
    s = [sentence("a", 10), sentence("b", 4), sentence("c", 12)]
    chunks = chunk_sections([paragraph_section(*s)], max_tokens=14, overlap_tokens=4, count=words)
    assert len(chunks) >= 2, "three sentences over a 14-word budget make several chunks"
    assert all(words(c.text) <= 14 for c in chunks)


def test_single_unit_over_budget_stays_whole() -> None:
    text = " ".join(f"word{i}" for i in range(30))  # no sentence end to cut at
    chunks = chunk_sections(
        [Section(("A",), [Block(text, "paragraph")])], max_tokens=5, overlap_tokens=0, count=words
    )
    assert [c.text for c in chunks] == [text]


def test_long_code_block_is_cut_only_at_blank_lines() -> None:
    parts = ["def a():\n    return 1", "def b():\n    return 2", "def c():\n    return 3"]
    code = Block("\n\n".join(parts), "code")
    chunks = chunk_sections([Section(("C",), [code])], max_tokens=4, overlap_tokens=0, count=words)
    assert [c.text for c in chunks] == parts


def test_split_sentences_keeps_terminal_punctuation() -> None:
    assert split_sentences("One here. Two there! Three? 4 four.") == [
        "One here.",
        "Two there!",
        "Three?",
        "4 four.",
    ]
