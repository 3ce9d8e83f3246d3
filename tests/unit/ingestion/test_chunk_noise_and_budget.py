"""chunk_sections: no chunk is only navigation or symbols; the title/section heading the model
reads is paid for out of the budget; the budget never exceeds the embedder's window."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.chunking import SPECIAL_TOKENS, chunk_sections, is_noise, window_budget
from ingestion.embedding import embedding_heading, embedding_text
from ingestion.identity import Identity
from ingestion.markdown_sections import Block, Section
from ingestion.pipeline import ChunkingPolicy, build_chunks, embedding_input
from ingestion.validation import Limits

pytestmark = pytest.mark.unit


def words(text: str) -> int:
    return len(text.split())


def chunk(*blocks: Block, max_tokens: int = 100, **kwargs: object) -> list[str]:
    section = Section(("S",), list(blocks))
    pieces = chunk_sections(
        [section], max_tokens=max_tokens, overlap_tokens=0, count=words, **kwargs
    )
    return [p.text for p in pieces]


@pytest.mark.parametrize(
    "text",
    [
        "Prev | Up | Next | Home",
        "« Previous topic | Next topic »",
        "Table of Contents",
        "Show Source",
        "Report a Bug",
        "Skip to main content",
        "index | modules | next | previous |",
        "Theme Auto Light Dark",
        "| Prev | Up | Next |\n| --- | --- | --- |\n| Home | | |",
        "¶",
        "---",
        "* * *",
        "•",
        "   \n\t ",
        "»",
        "| | |\n| --- | --- |",
    ],
)
def test_navigation_or_symbols_alone_is_noise(text: str) -> None:
    assert is_noise(text)


@pytest.mark.parametrize(
    "text",
    [
        "Next, call close() on the file.",
        "See the index of modules for more.",
        "Home directories are created by useradd.",
        "42",
        "x = 1",
        "| Option | Meaning |\n| --- | --- |\n| '<' | left-align |",
    ],
)
def test_content_is_not_noise(text: str) -> None:
    assert not is_noise(text)


def test_a_navigation_only_block_never_becomes_a_chunk() -> None:
    assert chunk(Block("Prev | Up | Next | Home", "paragraph")) == []
    assert chunk(Block("- Previous topic", "list"), Block("- Next topic", "list")) == []


def test_a_symbols_only_block_never_becomes_a_chunk() -> None:
    assert chunk(Block("¶", "paragraph"), Block("* * *", "paragraph")) == []


def test_noise_between_content_is_left_out_of_the_chunk() -> None:
    pieces = chunk(
        Block("Prev | Up | Next | Home", "paragraph"),
        Block("The extract function retrieves subfields.", "paragraph"),
        Block("¶", "paragraph"),
        Block("It takes a field and a source.", "paragraph"),
    )
    assert pieces == ["The extract function retrieves subfields.\n\nIt takes a field and a source."]


def test_a_code_chunk_of_symbols_only_is_dropped_but_symbols_inside_code_stay() -> None:
    assert chunk(Block("}", "code")) == []
    code = "int f(void) {\n    return 1;\n\n}"
    assert chunk(Block(code, "code")) == [code]


def test_the_section_heading_is_paid_for_out_of_the_budget() -> None:
    sentences = [f"S{i} one two three." for i in range(10)]  # 4 words each
    section = Section(("Install", "On Linux"), [Block(" ".join(sentences), "paragraph")])

    def prefix(s: Section) -> str:
        return embedding_heading("Admin Guide", s.heading)  # 7 words

    pieces = chunk_sections([section], max_tokens=16, overlap_tokens=0, count=words, prefix=prefix)
    assert pieces
    for piece in pieces:
        embedded = embedding_text("Admin Guide", piece.section.heading, piece.text)
        assert words(embedded) <= 16
    assert [u for p in pieces for u in p.text.split("\n\n")] == sentences


def test_a_heading_longer_than_half_the_budget_leaves_the_body_half() -> None:
    sentences = [f"S{i} one two three." for i in range(6)]
    section = Section(("A",), [Block(" ".join(sentences), "paragraph")])
    long_heading = " ".join(["word"] * 30)
    pieces = chunk_sections(
        [section], max_tokens=8, overlap_tokens=0, count=words, prefix=lambda _: long_heading
    )
    assert all(words(p.text) <= 4 for p in pieces)
    assert len(pieces) == 6


def test_without_a_prefix_the_whole_budget_is_the_body() -> None:
    sentences = [f"S{i} one two three." for i in range(4)]
    pieces = chunk(Block(" ".join(sentences), "paragraph"), max_tokens=8)
    assert len(pieces) == 2


def test_window_budget_never_exceeds_the_embedders_window() -> None:
    assert window_budget(400, None) == 400
    assert window_budget(400, 512) == 400
    assert window_budget(600, 512) == 512 - SPECIAL_TOKENS
    assert window_budget(300, 256) == 256 - SPECIAL_TOKENS


def test_a_long_code_block_without_blank_lines_is_cut_between_lines() -> None:
    lines = [f"line{i} = {i}" for i in range(12)]  # 3 words a line
    pieces = chunk(Block("\n".join(lines), "code"), max_tokens=9)
    assert all(words(p) <= 9 for p in pieces)
    assert [line for p in pieces for line in p.split("\n")] == lines


def test_embedding_text_is_heading_line_then_body() -> None:
    assert (
        embedding_text("Guide", "Install > Linux", "Run it.") == "Guide > Install > Linux\nRun it."
    )
    assert embedding_text("", "", "Run it.") == "Run it."
    assert embedding_text("Guide", "", "Run it.") == "Guide\nRun it."


def test_build_chunks_embeds_title_and_section_within_the_budget(tmp_path: Path) -> None:
    body = " ".join(f"Sentence {i} has five words." for i in range(40))
    path = tmp_path / "guide.md"
    path.write_text(f"# Admin Guide\n\n## Install\n\n### On Linux\n\n{body}\n", encoding="utf-8")
    chunks, _ = build_chunks(
        path,
        source=str(path),
        doc_type="markdown",
        groups=("ops",),
        policy=ChunkingPolicy(max_tokens=40, overlap_tokens=0, window_tokens=32),
        limits=Limits(),
        count_tokens=words,
        hashed="h",
        identity=Identity(b"unit-test-id-key-0123456789"),
    )
    assert len(chunks) > 1
    for c in chunks:
        assert c.title == "Admin Guide"
        assert c.section == "Install > On Linux"
        assert not c.text.startswith("Admin Guide")  # users see the body
        embedded = embedding_input(c)
        assert embedded.startswith("Admin Guide > Install > On Linux\n")
        assert words(embedded) <= 32 - SPECIAL_TOKENS
