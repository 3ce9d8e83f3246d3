"""Redact a token stream without buffering the whole answer.

The last ``window`` characters (counted as the recognizers read them: invisible format characters
and combining marks not counted) are held back until the redactor has seen what follows them; text
before them is released only up to a whitespace boundary (a run of non-whitespace at the cut could
still grow into an e-mail address, IBAN or card number) and never into a detected entity. The
window is at least ``LONGEST_ENTITY``, the longest value the recognizers match, so an entity that
starts before the cut ends inside the held text and is analysed whole: the start of a long e-mail
address is not let out while its domain is still being generated.

The analyzer runs once per half window of new text, not once per token: tokens are a few
characters, and Presidio on its small thread pool would otherwise pace the stream. Spans found in
one run stay attached to the held text, and the analyzer sees the last released characters as
context, so a value found next to its context word ("SSN") stays found on the next run.
"""

from __future__ import annotations

import re
from collections import Counter

from services.pii_fold import fold_char
from services.ports import Redactor
from services.records import EntitySpan
from services.redaction_placeholders import apply_spans

LONGEST_ENTITY = 128  # an 84-character e-mail, a 34-character IBAN, with room to spare
_HOLD_LIMIT = 8  # windows of text without any whitespace before it is cut anyway
_LAST_SPACE = re.compile(r"\s(?=\S*$)")


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
        self._window = max(window_chars, LONGEST_ENTITY)
        self._step = self._window // 2
        self._pending = ""
        self._context = ""  # the last released text, as generated: the analyzer's left context
        self._spans: set[EntitySpan] = set()  # found in the held text, offsets into it
        self.analyses = 0

    def feed(self, piece: str) -> str:
        """Take the next piece of model output; return the text that is now safe to emit."""
        if self._redactor is None:
            return piece
        self._pending += piece
        if len(self._pending) < self._window + self._step:
            return ""
        spans = self._analyze(self._redactor)
        return self._release(self._cut(spans), spans)

    def flush(self) -> str:
        """The end of the stream: redact and release whatever is still held back."""
        if self._redactor is None or not self._pending:
            rest, self._pending = self._pending, ""
            return rest
        spans = self._analyze(self._redactor)
        return self._release(len(self._pending), spans)

    def _analyze(self, redactor: Redactor) -> set[EntitySpan]:
        offset = len(self._context)
        found = redactor.find(self._context + self._pending)
        self.analyses += 1
        shifted = {
            EntitySpan(max(0, s.start - offset), s.end - offset, s.entity_type)
            for s in found
            if s.end > offset  # entities wholly in released text were redacted on release
        }
        return shifted | self._spans

    def _cut(self, spans: set[EntitySpan]) -> int:
        """Where the released text may end: before the window, after whitespace, outside spans.
        The window and the hold limit count the characters the recognizers read: an address
        stretched with invisible characters is no longer to them, and was let out by its start
        while its end was still held."""
        cut = visible_start(self._pending, self._window)
        if cut <= 0:
            return 0
        space = _LAST_SPACE.search(self._pending, 0, cut)
        if space is not None:
            cut = space.end()
        elif visible_start(self._pending, _HOLD_LIMIT * self._window) <= 0:
            return 0  # one run of non-whitespace so far: it may still become an entity
        moved = True
        while moved:  # spans may overlap: move until no span straddles the cut
            moved = False
            for span in spans:
                if span.start < cut < span.end:
                    cut, moved = span.start, True
        return cut

    def _release(self, cut: int, spans: set[EntitySpan]) -> str:
        if cut <= 0:
            self._spans = spans
            return ""
        head, self._pending = self._pending[:cut], self._pending[cut:]
        released = apply_spans(head, [s for s in spans if s.end <= cut])
        self._tally.update(released.counts)
        self._context = (self._context + head)[-self._window :]
        self._spans = {
            EntitySpan(s.start - cut, s.end - cut, s.entity_type) for s in spans if s.start >= cut
        }
        return released.text


def visible_start(text: str, visible: int) -> int:
    """Where the last ``visible`` characters the recognizers read begin in ``text`` (0 when it
    holds no more): invisible format characters and combining marks, which the fold drops
    (``services.pii_fold``), are not counted."""
    count = 0
    for index in range(len(text) - 1, -1, -1):
        char = text[index]
        if char.isascii() or fold_char(char):
            count += 1
            if count == visible:
                return index
    return 0
