"""Front matter at the top of a Markdown file: read for its title, never indexed as text.

Pages of static-site generators (Hugo, Jekyll, MkDocs, Docusaurus) open with a YAML block
between ``---`` lines (TOML between ``+++`` in Hugo). CommonMark knows no such block: the
closing ``---`` under ``title: Backups`` made it a setext heading, so every page of a docs
repository got a section named after its raw metadata, and ``weight: 40`` or ``draft: true`` was
indexed as text. The rendered page shows none of it but the title, usually as its heading, and
a page with front matter seldom has a ``# Title`` of its own; so the title is kept, as the
document's title, and the block is blanked (line numbers stay, markdown-it's maps rely on them).

A first block that does not parse as a mapping (a thematic break, then prose) is no front
matter and is left as it is.
"""

from __future__ import annotations

import tomllib

import yaml

MAX_FRONT_MATTER_CHARS = 64_000  # a page's metadata; anything longer is read as Markdown
_FENCES = {"---": ("---", "..."), "+++": ("+++",)}


def split_front_matter(text: str) -> tuple[str | None, str]:
    """The title of the front matter ``text`` opens with ("" when it names none; None when
    there is no front matter), and ``text`` with that block's lines left empty (the others
    keep their numbers)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() not in _FENCES:
        return None, text
    opening = lines[0].rstrip()
    closing = next(
        (i for i, line in enumerate(lines[1:], start=1) if line.rstrip() in _FENCES[opening]),
        None,
    )
    if closing is None:
        return None, text
    source = "".join(lines[1:closing])
    if len(source) > MAX_FRONT_MATTER_CHARS:
        return None, text
    try:
        fields = yaml.safe_load(source) if opening == "---" else tomllib.loads(source)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, ValueError):
        return None, text
    if not isinstance(fields, dict):
        return None, text
    title = fields.get("title")
    body = "\n" * (closing + 1) + "".join(lines[closing + 1 :])
    return (" ".join(title.split()) if isinstance(title, str) else ""), body
