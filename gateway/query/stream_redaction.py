"""Redact a token stream without buffering the whole answer.

Text is held back in a short look-ahead window; only text before the window, and never a part of
a detected entity, is released. A PII value shorter than the window can therefore never be
emitted, even when the model produces it split across several tokens.
"""

from __future__ import annotations

from collections import Counter

from services.ports import Redactor
from services.redaction_placeholders import apply_spans


class StreamRedactor:
    def __init__(
        self,
        redactor: Redactor | None,
        tally: Counter[str],
        *,
        window_chars: int,
    ) -> None:
        self._redactor = redactor
        self._tally = tally
        self._window = window_chars
        self._pending = ""

    def feed(self, piece: str) -> str:
        """Take the next piece of model output; return the text that is now safe to emit."""
        if self._redactor is None:
            return piece
        self._pending += piece
        if len(self._pending) <= self._window:
            return ""
        spans = self._redactor.find(self._pending)
        cut = len(self._pending) - self._window
        whitespace = self._pending.rfind(" ", 0, cut + 1)
        cut = whitespace + 1 if whitespace > 0 else cut
        for span in spans:  # never cut through an entity: release only what precedes it
            if span.start < cut < span.end:
                cut = span.start
        if cut <= 0:
            return ""
        released = apply_spans(self._pending[:cut], [s for s in spans if s.end <= cut])
        self._tally.update(released.counts)
        self._pending = self._pending[cut:]
        return released.text

    def flush(self) -> str:
        """The end of the stream: redact and release whatever is still held back."""
        rest, self._pending = self._pending, ""
        if self._redactor is None or not rest:
            return rest
        result = self._redactor.redact(rest)
        self._tally.update(result.counts)
        return result.text
