"""Where in a text PII must not be looked for: code, identifiers, table headers, URLs, paths.

Pure functions over the text (no NLP model): a fenced code block, inline code, a function call
(``now()``, ``os.path.join(a, b)``), an identifier (snake_case, CamelCase, dotted.name), the key
of a config line (``max_connections =``), a Markdown table's header row, a URL or a file path.
Which of these block which entity type is the engine's policy (``BLOCKED_BY``): a name is never
found inside any of them, while a secret pasted into a code block is still a secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CODE = "code"
INLINE_CODE = "inline_code"
FUNCTION_CALL = "function_call"
IDENTIFIER = "identifier"
CONFIG_KEY = "config_key"
TABLE_HEADER = "table_header"
URL = "url"
PATH = "path"

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n(?:.*?\n)??[ \t]*\1[ \t]*$", re.M | re.S)
_OPEN_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*$", re.M)
_PROMPT_LINE = re.compile(r"^[ \t]*(?:\$|>>>|\.\.\.|PS>|mysql>|postgres=#)[ \t][^\n]*$", re.M)
_INLINE = re.compile(r"(`{1,2})(?!`)[^`\n]+?\1")
_URL = re.compile(
    r"\b(?:[a-z][a-z0-9+.\-]*://|www\.)[^\s<>\"'`)\]]+|\bmailto:[^\s<>\"'`)\]]+", re.I
)
_EMAIL = re.compile(r"[\w.+\-']+@[\w\-]+(?:\.[\w\-]+)+")
_PATH = re.compile(r"(?<![\w/.@:])(?:~|\.{1,2})?/(?:[\w.\-]+/)*[\w.\-]+/?")
_CALL = re.compile(r"(?<![\w.])[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*\((?:[^()\n]|\([^()\n]*\)){0,80}\)")
_SNAKE = re.compile(r"(?<![\w.])_*[A-Za-z][A-Za-z0-9]*(?:_+[A-Za-z0-9]+)+_*(?![\w])|\b__\w+__\b")
_DOTTED = re.compile(r"(?<![\w.@])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?![\w@])")
_CAMEL = re.compile(r"\b[A-Za-z]*[a-z][A-Z]\w*\b|\b[A-Z]{2,}[a-z]\w*\b")
_NAME_CAMEL = re.compile(r"(?:Mc|Mac|De|Di|Da|Du|La|Le|Van|Von|St)[A-Z][a-z]+")
_INITIALS = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?")
_CONFIG_EQ = re.compile(r"^[ \t]*-?[ \t]*([A-Za-z_][\w.\-]*)[ \t]*(?==)", re.M)
_CONFIG_COLON = re.compile(
    r"^[ \t]*-?[ \t]*((?:[a-z_][\w.\-]*|[A-Za-z_]\w*[_.\-][\w.\-]*))[ \t]*(?=:(?:[ \t]|$))", re.M
)
_TABLE_ROW = re.compile(r"^[ \t]*\|[^\n]*\|[ \t]*$")
_TABLE_SEP = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*:?-{0,}:?[ \t]*$")
_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]|(?:\d+\.)+\d*\.?[ \t]|[A-Z]\.\d+(?:\.\d+)*\.?[ \t]|"
    r"(?:Chapter|Appendix|Part|Section)[ \t]+[\dA-Z]+\.?[ \t])",
    re.M,
)


@dataclass(frozen=True, slots=True)
class Region:
    start: int
    end: int
    kind: str


def _table_headers(text: str) -> list[Region]:
    found = []
    lines = text.split("\n")
    offset = 0
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _TABLE_ROW.match(line) and _TABLE_SEP.match(nxt):
            found.append(Region(offset, offset + len(line), TABLE_HEADER))
        offset += len(line) + 1
    return found


def _code_blocks(text: str) -> list[Region]:
    found = [Region(m.start(), m.end(), CODE) for m in _FENCE.finditer(text)]
    taken = [(r.start, r.end) for r in found]
    for m in _OPEN_FENCE.finditer(text):  # a fence left open (the chunk was cut): to the end
        if not any(s <= m.start() < e for s, e in taken):
            found.append(Region(m.start(), len(text), CODE))
            break
    found += [Region(m.start(), m.end(), CODE) for m in _PROMPT_LINE.finditer(text)]
    return found


def protected_regions(text: str) -> list[Region]:
    """Every region of ``text`` that is code, an identifier, a header row, a URL or a path."""
    regions = _code_blocks(text) + _table_headers(text)
    regions += [Region(m.start(), m.end(), INLINE_CODE) for m in _INLINE.finditer(text)]
    masked = [(m.start(), m.end()) for m in _EMAIL.finditer(text)]
    urls = [Region(m.start(), m.end(), URL) for m in _URL.finditer(text)]
    regions += urls
    masked += [(r.start, r.end) for r in urls]

    def free(start: int, end: int) -> bool:
        return not any(s < end and start < e for s, e in masked)

    regions += [
        Region(m.start(), m.end(), PATH)
        for m in _PATH.finditer(text)
        if len(m.group(0)) > 2 and free(m.start(), m.end())
    ]
    regions += [
        Region(m.start(), m.end(), FUNCTION_CALL)
        for m in _CALL.finditer(text)
        if free(m.start(), m.end())
    ]
    for pattern in (_SNAKE, _DOTTED, _CAMEL):
        for m in pattern.finditer(text):
            word = m.group(0)
            if not free(m.start(), m.end()) or _NAME_CAMEL.fullmatch(word):
                continue
            if pattern is _DOTTED and _INITIALS.fullmatch(word):
                continue  # e.g., i.e., J.R.R
            regions.append(Region(m.start(), m.end(), IDENTIFIER))
    for pattern in (_CONFIG_EQ, _CONFIG_COLON):
        regions += [Region(m.start(1), m.end(1), CONFIG_KEY) for m in pattern.finditer(text)]
    return sorted(regions, key=lambda r: (r.start, r.end))


def heading_lines(text: str) -> list[tuple[int, int]]:
    """Lines that read as headings or section paths: ``## Title``, ``36.11. Large Objects``,
    ``Chapter 12. ...``, and a text that is one short line without a closing period."""
    found = []
    for m in _HEADING.finditer(text):
        end = text.find("\n", m.start())
        found.append((m.start(), len(text) if end < 0 else end))
    stripped = text.strip()
    if (
        stripped
        and "\n" not in stripped
        and len(stripped) <= 120
        and stripped[-1] not in ".!?"
        and not re.search(r"(?<=[^\W\d])[.!?,;][ \t]", stripped.replace("e.g. ", ""))
    ):
        start = text.index(stripped)
        found.append((start, start + len(stripped)))
    return sorted(set(found))


def overlaps(start: int, end: int, regions: list[Region], kinds: frozenset[str]) -> bool:
    return any(r.kind in kinds and r.start < end and start < r.end for r in regions)
