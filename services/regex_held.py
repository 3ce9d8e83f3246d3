"""Regular expressions that keep the GIL while they match.

The ``regex`` module (Presidio's and the PII rules') lets go of the GIL for every match call on
a str, so that other threads may run meanwhile. Over a short question a match takes
microseconds, but taking the GIL back can take up to the interpreter's switch interval (5 ms)
while another thread runs Python, and a question's redaction makes dozens of such calls. With
one busy Python thread beside it, a question's PII analysis took 33 ms at the median instead of
0.3 ms, and 2.2 ms of CPU instead of 0.5 (the waits and thread switches); a loaded gateway has
many such threads. Matching with ``concurrent=False`` keeps the GIL and finds the same matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import regex


class HeldPattern:
    """A compiled ``regex`` pattern whose matching calls keep the GIL."""

    __slots__ = ("pattern",)

    def __init__(self, pattern: regex.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, string: str, *args: Any, **kwargs: Any) -> regex.Match[str] | None:
        return self.pattern.search(string, *args, concurrent=False, **kwargs)

    def match(self, string: str, *args: Any, **kwargs: Any) -> regex.Match[str] | None:
        return self.pattern.match(string, *args, concurrent=False, **kwargs)

    def fullmatch(self, string: str, *args: Any, **kwargs: Any) -> regex.Match[str] | None:
        return self.pattern.fullmatch(string, *args, concurrent=False, **kwargs)

    def finditer(self, string: str, *args: Any, **kwargs: Any) -> Iterator[regex.Match[str]]:
        return self.pattern.finditer(string, *args, concurrent=False, **kwargs)  # type: ignore[no-any-return]

    def findall(self, string: str, *args: Any, **kwargs: Any) -> list[Any]:
        return list(self.pattern.findall(string, *args, concurrent=False, **kwargs))

    def sub(self, repl: Any, string: str, *args: Any, **kwargs: Any) -> str:
        return str(self.pattern.sub(repl, string, *args, concurrent=False, **kwargs))


def held(pattern: str, flags: int = 0) -> HeldPattern:
    """``regex.compile(pattern, flags)``, matching with the GIL kept."""
    return HeldPattern(regex.compile(pattern, flags))


def hold_gil_in(recognizer: Any) -> Any:
    """A Presidio pattern recognizer with its patterns compiled now, held. Presidio compiles
    each ``Pattern`` on first use (``compiled_regex``, noting ``compiled_with_flags``) with the
    recognizer's ``global_regex_flags``, and compiles again only for other flags; a recognizer
    without patterns is returned as it is."""
    flags = getattr(recognizer, "global_regex_flags", None)
    for pattern in getattr(recognizer, "patterns", None) or ():
        pattern.compiled_regex = held(pattern.regex, flags or 0)
        pattern.compiled_with_flags = flags
    return recognizer
