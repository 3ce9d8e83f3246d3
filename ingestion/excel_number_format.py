"""A cell's number as Excel shows it, from the cell's number format code.

A workbook stores numbers bare: 25% is 0.25, 31 Dec 2024 is 45657, "1,234.50 €" is 1234.5. The
format code says how Excel shows them, and what a reader of the sheet sees is what a question
about it will use ("which line is 25%?", "what is due on 12/31/2024?"), and the currency may be
the only place a sheet says euros. No library on the package registry renders format codes, so
this module covers the codes workbooks use for amounts, percentages, dates and times:

- sections for positive, negative and zero values (``#,##0.00;(#,##0.00);"-"``);
- digit placeholders ``0 # ?``, the decimal point, thousands separators and trailing-comma
  scaling (``#,##0,"K"``), ``%``, quoted and backslash-escaped literals, ``_x`` spaces, ``*x``
  fills (dropped), colours (ignored), currency brackets (``[$€-407]`` shows ``€``);
- date and time codes (``y m d h s``, ``AM/PM``, ``A/P``, elapsed ``[h]``), minutes told from
  months as Excel does (after an hour, before a second).

Anything else (scientific, fractions, conditions, ``@``, fractional seconds) gives None and the
caller keeps the stored value. Dates use English names, as Excel for en-US shows them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

_DATE_LETTERS = set("ymdhs")
_NUMBER_CHARS = set("0#?.,")
_COLOR = re.compile(r"(?i)^(black|blue|cyan|green|magenta|red|white|yellow|color\d{1,2})$")
_ELAPSED = re.compile(r"(?i)^(h+|m+|s+)$")
_EXCEL_MAX_SERIAL = 2_958_465  # 31 Dec 9999
_MONTHS = [dt.date(2001, m, 1).strftime("%B") for m in range(1, 13)]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class Unsupported(ValueError):
    """A format code this module does not render."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # literal | number | date | elapsed | ampm | percent
    text: str


def displayed(value: float, code: str, *, date1904: bool = False) -> str | None:
    """``value`` as a cell formatted with ``code`` shows it, or None (keep the stored value)."""
    sections = _compiled(code)
    if not sections or not math.isfinite(value):  # General, or a malformed cell
        return None
    try:
        if value < 0 and len(sections) >= 2:
            tokens, number, signed = sections[1], -value, False
        elif value == 0 and len(sections) >= 3:
            tokens, number, signed = sections[2], 0.0, False
        else:
            tokens, number, signed = sections[0], value, True
        if any(t.kind in ("date", "elapsed", "ampm") for t in tokens):
            return _date(value, tokens, date1904).strip()
        if any(t.kind == "slash" for t in tokens):
            raise Unsupported("fractions")
        return _number(number, tokens, signed).strip()
    except Unsupported:
        return None


@lru_cache(maxsize=512)
def _compiled(code: str) -> tuple[tuple[Token, ...], ...] | None:
    """The tokens of each section of ``code`` (a sheet has few codes and many cells), or None
    for General and for codes not rendered."""
    if code.strip().lower() in ("", "general"):
        return None
    try:
        return tuple(tuple(_tokenize(section)) for section in _sections(code))
    except Unsupported:
        return None


def _sections(code: str) -> list[str]:
    """The code's ``;``-separated sections (a ``;`` inside quotes or brackets is text)."""
    sections, current, quoted, bracket, i = [], "", False, False, 0
    while i < len(code):
        ch = code[i]
        if ch == "\\" and not quoted and i + 1 < len(code):
            current += code[i : i + 2]
            i += 2
            continue
        if ch == '"' and not bracket:
            quoted = not quoted
        elif ch == "[" and not quoted:
            bracket = True
        elif ch == "]" and not quoted:
            bracket = False
        elif ch == ";" and not (quoted or bracket):
            sections.append(current)
            current = ""
            i += 1
            continue
        current += ch
        i += 1
    return [*sections, current]


def _tokenize(section: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(section):
        ch = section[i]
        lower = ch.lower()
        if ch == '"':
            end = section.find('"', i + 1)
            if end < 0:
                raise Unsupported("unclosed quote")
            tokens.append(Token("literal", section[i + 1 : end]))
            i = end + 1
        elif ch == "\\" and i + 1 < len(section):
            tokens.append(Token("literal", section[i + 1]))
            i += 2
        elif ch == "_" and i + 1 < len(section):
            tokens.append(Token("literal", " "))
            i += 2
        elif ch == "*" and i + 1 < len(section):
            i += 2  # a fill: repeats to the column's width, nothing to read
        elif ch == "[":
            end = section.find("]", i)
            if end < 0:
                raise Unsupported("unclosed bracket")
            tokens += _bracket(section[i + 1 : end])
            i = end + 1
        elif section[i : i + 5].upper() == "AM/PM":
            tokens.append(Token("ampm", "AM/PM"))
            i += 5
        elif section[i : i + 3].upper() == "A/P":
            tokens.append(Token("ampm", "A/P"))
            i += 3
        elif lower in _DATE_LETTERS:
            end = i
            while end < len(section) and section[end].lower() == lower:
                end += 1
            tokens.append(Token("date", section[i:end].lower()))
            i = end
        elif ch in _NUMBER_CHARS:
            tokens.append(Token("number", ch))
            i += 1
        elif ch == "%":
            tokens.append(Token("percent", "%"))
            i += 1
        elif ch == "/":  # a date's separator, or a fraction (not rendered)
            tokens.append(Token("slash", "/"))
            i += 1
        elif lower == "e" or ch == "@":
            raise Unsupported(f"{ch!r}: scientific or text codes")
        else:
            tokens.append(Token("literal", ch))
            i += 1
    return tokens


def _bracket(content: str) -> list[Token]:
    if content.startswith("$"):  # [$€-407]: a currency symbol and a locale
        symbol = content[1:].split("-", 1)[0]
        return [Token("literal", symbol)] if symbol else []
    if _COLOR.match(content):
        return []
    if _ELAPSED.match(content):
        return [Token("elapsed", content.lower())]
    raise Unsupported(f"[{content}]: conditions and locales other than currency")


def _number(value: float, tokens: Sequence[Token], signed: bool) -> str:
    pattern = "".join(t.text for t in tokens if t.kind == "number")
    scaled = Decimal(repr(value)) * (100 ** sum(t.kind == "percent" for t in tokens))
    whole, _, fraction = pattern.partition(".")
    placeholders = whole.rstrip(",")
    scaled /= Decimal(1000) ** (len(whole) - len(placeholders))  # "#,##0," shows thousands
    grouped = "," in placeholders.strip(",")
    most = sum(c in "0#?" for c in fraction)
    least = fraction.count("0")
    rounded = abs(scaled).quantize(Decimal(1).scaleb(-most), rounding=ROUND_HALF_UP)
    integer, _, digits = f"{rounded:f}".partition(".")
    minimum = placeholders.count("0")
    integer = "" if integer == "0" and minimum == 0 else integer.zfill(minimum)
    if grouped and integer:
        integer = f"{int(integer):,}".zfill(len(integer))
    digits = digits.rstrip("0").ljust(least, "0") if digits else "0" * least
    number = integer + ("." + digits if "." in pattern else "")
    out, placed = "", False
    for token in tokens:
        if token.kind == "number":
            if not placed:
                out += number
                placed = True
        else:
            out += token.text
    negative = signed and value < 0 and rounded != 0
    return ("-" if negative else "") + out


def _date(value: float, tokens: Sequence[Token], date1904: bool) -> str:
    if any(t.kind == "number" and t.text in "0#?" for t in tokens):
        raise Unsupported("fractional seconds")
    calendar = any(
        t.kind == "date" and t.text[0] in "ymd" and not _is_minute(tokens, i)
        for i, t in enumerate(tokens)
    )
    if value < 0 or value > _EXCEL_MAX_SERIAL:
        raise Unsupported("a date out of range")
    if calendar and not date1904 and (value < 1 or 60 <= value < 61):
        raise Unsupported("day 0, or the 29 February 1900 Excel counts and no calendar has")
    when = _from_serial(value, date1904)
    twelve = any(t.kind == "ampm" for t in tokens)
    out = []
    for index, token in enumerate(tokens):
        if token.kind == "date":
            out.append(_date_part(token.text, when, twelve, _is_minute(tokens, index)))
        elif token.kind == "elapsed":
            unit = {"h": 3600, "m": 60, "s": 1}[token.text[0]]
            total = round(value * 86_400) // unit
            out.append(str(total).zfill(len(token.text)))
        elif token.kind == "ampm":
            pm = when.hour >= 12
            out.append(("PM" if pm else "AM") if token.text == "AM/PM" else ("P" if pm else "A"))
        else:  # literals, and "/ , ." which separate a date's parts
            out.append(token.text)
    return "".join(out)


def _from_serial(value: float, date1904: bool) -> dt.datetime:
    """Excel's serial day as a time, to the second (1900 system: day 60 is the 29 February 1900
    Excel counts and no calendar has)."""
    days = value + (1462 if date1904 else 0)
    if not date1904 and days < 61:
        days += 1  # before the phantom 29 February
    seconds = round(days * 86_400)
    return dt.datetime(1899, 12, 30) + dt.timedelta(seconds=seconds)


def _is_minute(tokens: Sequence[Token], index: int) -> bool:
    """``m``/``mm`` is minutes right after an hour or right before a second (literals skipped)."""
    if tokens[index].text[0] != "m" or len(tokens[index].text) > 2:
        return False
    before = [t for t in tokens[:index] if t.kind in ("date", "elapsed")]
    after = [t for t in tokens[index + 1 :] if t.kind in ("date", "elapsed")]
    return bool((before and before[-1].text[0] == "h") or (after and after[0].text[0] == "s"))


def _date_part(token: str, when: dt.datetime, twelve: bool, minute: bool) -> str:
    letter, width = token[0], len(token)
    if minute:
        return str(when.minute).zfill(width)
    if letter == "y":
        return str(when.year % 100).zfill(2) if width <= 2 else str(when.year)
    if letter == "m":
        name = _MONTHS[when.month - 1]
        return [str(when.month), f"{when.month:02d}", name[:3], name, name[0]][min(width, 5) - 1]
    if letter == "d":
        day = _DAYS[when.weekday()]
        return [str(when.day), f"{when.day:02d}", day[:3], day][min(width, 4) - 1]
    if letter == "h":
        hour = (when.hour % 12 or 12) if twelve else when.hour
        return str(hour).zfill(min(width, 2))
    return str(when.second).zfill(min(width, 2))  # s
