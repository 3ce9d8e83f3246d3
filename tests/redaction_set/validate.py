"""Check the labelled redaction set: offsets, gold text, checksums, kinds, size.

``python tests/redaction_set/validate.py`` exits non-zero and lists every problem it finds:
a span whose offsets do not hold its recorded text, overlapping gold spans, an unknown entity
type, source or protected kind, a credit card that fails Luhn, an IBAN that fails mod-97,
an SSN in a range that is never issued, duplicate ids, fewer than 300 snippets. Values written
with look-alike characters (the ``unicode`` source) are checked as the recognizers read them.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

from build import KINDS  # this folder's build script: the kinds of snippet sources

from services.pii_fold import fold

HERE = Path(__file__).parent
SOURCES = set(KINDS)
ENTITIES = {
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "SECRET",
}
PROTECTED = {"code", "inline_code", "function_call", "identifier", "table_header"}
MIN_SNIPPETS = 300


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(value: str) -> bool:
    s = value.replace(" ", "")
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ssn_ok(value: str) -> bool:
    m = re.fullmatch(r"(\d{3})-(\d{2})-(\d{4})", value)
    if not m:
        return False
    area, group, serial = (int(g) for g in m.groups())
    return 0 < area < 900 and area != 666 and group > 0 and serial > 0


def load() -> list[dict[str, object]]:
    records = []
    for path in sorted(HERE.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def problems(records: list[dict[str, object]]) -> list[str]:
    found: list[str] = []
    ids = Counter(str(r["id"]) for r in records)
    found += [f"duplicate id {i}" for i, n in ids.items() if n > 1]
    if len(records) < MIN_SNIPPETS:
        found.append(f"only {len(records)} snippets, need {MIN_SNIPPETS}")
    for r in records:
        rid, text = r["id"], str(r["text"])
        if r["source"] not in SOURCES:
            found.append(f"{rid}: unknown source {r['source']}")
        last_end = -1
        for s in r["spans"]:  # type: ignore[attr-defined]
            start, end, kind = s["start"], s["end"], s["entity_type"]
            if not 0 <= start < end <= len(text):
                found.append(f"{rid}: span {start}:{end} outside the text")
                continue
            if text[start:end] != s["text"]:
                found.append(f"{rid}: {kind} at {start}:{end} is {text[start:end]!r}")
            if text[start:end] != text[start:end].strip():
                found.append(f"{rid}: {kind} span has surrounding whitespace")
            if kind not in ENTITIES:
                found.append(f"{rid}: unknown entity type {kind}")
            if start < last_end:
                found.append(f"{rid}: overlapping gold spans at {start}")
            last_end = end
            value = fold(text[start:end]).text  # checksums of the value as the recognizers read it
            if kind == "CREDIT_CARD" and not luhn_ok(re.sub(r"\D", "", value)):
                found.append(f"{rid}: card {value} fails Luhn")
            if kind == "IBAN_CODE" and not iban_ok(value):
                found.append(f"{rid}: IBAN {value} fails mod-97")
            if kind == "US_SSN" and not ssn_ok(value):
                found.append(f"{rid}: SSN {value} is not an issuable number")
        for p in r["protected"]:  # type: ignore[attr-defined]
            if p["kind"] not in PROTECTED:
                found.append(f"{rid}: unknown protected kind {p['kind']}")
            if not 0 <= p["start"] < p["end"] <= len(text):
                found.append(f"{rid}: protected {p['start']}:{p['end']} outside the text")
            if p["kind"] == "function_call" and not text[p["start"] : p["end"]].endswith(")"):
                found.append(f"{rid}: function call {text[p['start'] : p['end']]!r} lacks ()")
    return found


def main() -> int:
    records = load()
    found = problems(records)
    for line in found:
        print(line)
    by_type = Counter(s["entity_type"] for r in records for s in r["spans"])  # type: ignore[attr-defined]
    by_source = Counter(str(r["source"]) for r in records)
    print(f"{len(records)} snippets; by source {dict(sorted(by_source.items()))}")
    print(f"gold spans by type {dict(sorted(by_type.items()))}")
    print("OK" if not found else f"{len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
