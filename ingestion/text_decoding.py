"""The text of a text-family file (.txt .md .csv .html .eml), whatever encoding it was saved in.

Order: a byte order mark (UTF-8/16/32) decides; else strict UTF-8; else charset-normalizer's
detection. Windows "Unicode text" is UTF-16 with a BOM and older Western files are cp1252, so
both must read right. The detector often ranks cp1250 or an old DOS code page above cp1252 for
short Western text ("naïve" came out "naďve"), so cp1252 is taken whenever the detector finds it
plausible and no other candidate fits the language better at no more noise; Polish, Cyrillic,
Greek, Turkish or CJK files, where cp1252 is implausible or fits worse, keep the detector's choice.
Binary junk (no plausible encoding, or NUL characters in the text) is refused with a reason.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from services.errors import InvalidRequestError

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf_32_le"),
    (codecs.BOM_UTF32_BE, "utf_32_be"),
    (codecs.BOM_UTF8, "utf_8"),
    (codecs.BOM_UTF16_LE, "utf_16_le"),
    (codecs.BOM_UTF16_BE, "utf_16_be"),
)
_WESTERN = "cp1252"


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str  # Python codec name, e.g. utf_8, utf_16_le, cp1252
    bom: bool = False

    @property
    def is_plain_utf8(self) -> bool:
        """The file's bytes are already UTF-8 without a BOM: parsers can read the file itself."""
        return self.encoding == "utf_8" and not self.bom

    @property
    def ascii_compatible(self) -> bool:
        """ASCII characters are single ASCII bytes (not so in UTF-16/32): MIME headers parse."""
        return "From: a\n".encode(self.encoding) == b"From: a\n"


def _detected_encoding(raw: bytes) -> str | None:
    """charset-normalizer's choice, or cp1252 where it is plausible and fits as well."""
    matches = from_bytes(raw)
    best = matches.best()
    if best is None:
        return None
    western = next((m for m in matches if _WESTERN in m.could_be_from_charset), None)
    if western is None or any(
        m.chaos <= western.chaos and m.coherence > western.coherence for m in matches
    ):
        return str(best.encoding)
    return _WESTERN


def _after_bom(raw: bytes) -> DecodedText | None:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return DecodedText(raw[len(bom) :].decode(encoding), encoding, bom=True)
            except UnicodeDecodeError as exc:
                reason = f"not valid {encoding} text after its byte order mark"
                raise InvalidRequestError(reason) from exc
    return None


def _as_utf8(raw: bytes) -> DecodedText | None:
    """UTF-8 text, unless it has NULs: ASCII saved as UTF-16 without a BOM is valid UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else DecodedText(text, "utf_8")


def _as_detected(raw: bytes) -> DecodedText:
    encoding = _detected_encoding(raw)
    if encoding is None:
        raise InvalidRequestError("not text (no plausible character encoding)")
    try:
        return DecodedText(raw.decode(encoding), encoding)
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(f"not text (not valid {encoding} either)") from exc


def decode_text(raw: bytes) -> DecodedText:
    """The text of ``raw``; ``InvalidRequestError`` when it is not text in a plausible encoding."""
    decoded = _after_bom(raw) or _as_utf8(raw) or _as_detected(raw)
    if "\x00" in decoded.text:
        raise InvalidRequestError("not text (contains NUL characters: binary data)")
    return decoded


def read_text(path: Path) -> DecodedText:
    return decode_text(path.read_bytes())
