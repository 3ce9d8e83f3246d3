"""The copy of a text that PII is looked for in: Unicode look-alikes folded to the ASCII the
recognizers match, with a map back to the original's offsets.

Presidio's recognizers match ASCII shapes. An SSN written with non-breaking hyphens (U+2011),
a card number grouped with no-break spaces, an address in fullwidth letters or any value with a
zero-width space inside reads the same to a person and to a language model, but matched
nothing, so it was stored, embedded and sent to the model as written. The recognizers now
read a folded copy:

- invisible format characters (zero-width spaces and joiners, soft hyphens, BOMs, bidi controls:
  category ``Cf``) and combining marks (``Mn``, e.g. a strike-through over each digit) are dropped;
- every decimal digit of any script becomes its ASCII digit;
- a dash or minus sign inside a word (no space on either side) becomes ``-``; every space
  separator becomes `` ``;
- any other character whose compatibility form (NFKC) is ASCII becomes that form (fullwidth
  at signs (U+FF20) and letters, the one-dot leader, ligatures).

Spans found in the copy are mapped back, so the placeholder replaces the original characters,
the invisible ones inside a value included. An ASCII text is its own copy, at no cost.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from services.regex_held import held

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_DASH = held(r"[\p{Pd}\u2212]")  # every dash, and the minus sign


@lru_cache(maxsize=4096)
def fold_char(char: str) -> str:
    """What one non-ASCII character reads as to the recognizers ('' when it is invisible)."""
    category = unicodedata.category(char)
    if category in ("Cf", "Mn"):
        return ""
    if category == "Nd":
        return str(unicodedata.decimal(char))
    if category == "Zs":
        return " "
    compatible = unicodedata.normalize("NFKC", char)
    return compatible if compatible.isascii() else char


def _inside_a_word(text: str, offset: int) -> bool:
    """A dash with no space on either side joins the parts of one value (an SSN written with
    U+2011); one between spaces is punctuation (``Jenny — can you``), and stays as written: read
    as a hyphen, it changed what the name recogniser saw."""
    return 0 < offset < len(text) - 1 and not (
        text[offset - 1].isspace() or text[offset + 1].isspace()
    )


class FoldedText:
    """``text`` as the recognizers read it, and the way back to the original's offsets. The
    offset map is built only when a span is looked up: most texts hold no PII."""

    __slots__ = ("_origin", "_parts", "text")

    def __init__(self, text: str, parts: list[str] | None = None) -> None:
        self.text = text
        self._parts = parts  # what each original character reads as; None: the text is ASCII
        self._origin: list[int] | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original offsets of the folded span ``[start, end)``, from the first character
        it was read from to the last (invisible characters between them included)."""
        if self._parts is None or end <= start:
            return start, end
        if self._origin is None:
            self._origin = [i for i, part in enumerate(self._parts) for _ in part]
        return self._origin[start], self._origin[end - 1] + 1


def fold(text: str) -> FoldedText:
    if text.isascii():
        return FoldedText(text)
    parts = list(text)
    for run in _NON_ASCII.finditer(text):
        parts[run.start() : run.end()] = map(fold_char, run.group())
    for dash in _DASH.finditer(text):
        if _inside_a_word(text, dash.start()):
            parts[dash.start()] = "-"
    return FoldedText("".join(parts), parts)
