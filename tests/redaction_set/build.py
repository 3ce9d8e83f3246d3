"""Build the labelled redaction set (``<kind>.jsonl``) from the hand-written sources in ``src/``.

Each ``src/<kind>.txt`` holds snippets separated by a line ``%%%``. Inside a snippet:

- ``⟦ENTITY_TYPE|value⟧`` marks a gold PII span (``value`` stays in the text, unmarked);
- ``⟪kind|text⟫`` marks a region that must never be replaced: ``code`` (a code block),
  ``inline_code``, ``function_call``, ``identifier``, ``table_header``. Gold spans may sit inside
  one (a real secret pasted in a code block); the characters of a gold span are not protected.

``src/holdout/<kind>.txt`` holds snippets written after the engine's rules were tuned on the
others, and never used to tune them; they go to ``holdout.jsonl`` (ids ``holdout-<kind>-NNN``,
``"split": "holdout"``) so that the report can show how the rules fare on text they have not seen.

``src/unicode.txt`` writes PII as office documents, PDF text layers and pasted text carry it
(no-break spaces and hyphens, soft hyphens, zero-width characters, fullwidth and Arabic-Indic
digits), beside ordinary text with typographic dashes and no-break spaces that holds none. Its
characters are literal: read it with ``python -c 'print(ascii(open(...).read()))'``.

Run ``python tests/redaction_set/build.py`` after editing a source, then ``validate.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
KINDS = (
    "manual",
    "code",
    "config",
    "table",
    "heading",
    "hr",
    "finance",
    "email",
    "ticket",
    "unicode",
)
OPEN = {"⟦": "gold", "⟪": "protected"}
CLOSE = {"⟧": "gold", "⟫": "protected"}


def parse(marked: str) -> tuple[str, list[dict[str, object]], list[dict[str, object]]]:
    """The plain text, its gold spans and its protected regions."""
    out: list[str] = []
    length = 0
    stack: list[tuple[str, str, int]] = []  # (mark, label, start)
    gold: list[dict[str, object]] = []
    protected: list[dict[str, object]] = []
    i = 0
    while i < len(marked):
        ch = marked[i]
        if ch in OPEN:
            bar = marked.index("|", i)
            stack.append((OPEN[ch], marked[i + 1 : bar], length))
            i = bar + 1
            continue
        if ch in CLOSE:
            mark, label, start = stack.pop()
            if mark != CLOSE[ch]:
                raise ValueError(f"mismatched {ch} in {marked[:60]!r}")
            text = "".join(out)[start:length]
            if mark == "gold":
                gold.append({"start": start, "end": length, "entity_type": label, "text": text})
            else:
                protected.append({"start": start, "end": length, "kind": label})
            i += 1
            continue
        out.append(ch)
        length += 1
        i += 1
    if stack:
        raise ValueError(f"unclosed mark in {marked[:60]!r}")
    gold.sort(key=lambda s: (s["start"], s["end"]))  # type: ignore[return-value]
    protected.sort(key=lambda s: (s["start"], s["end"]))  # type: ignore[return-value]
    return "".join(out), gold, protected


def build(kind: str, split: str = "tuning") -> list[dict[str, object]]:
    folder = HERE / "src" / ("holdout" if split == "holdout" else "")
    path = folder / f"{kind}.txt"
    if not path.exists():
        return []
    raw = path.read_text(encoding="utf-8")
    snippets = [s.strip("\n") for s in raw.split("\n%%%\n")]
    records = []
    for n, marked in enumerate(s for s in snippets if s.strip()):
        text, gold, protected = parse(marked)
        prefix = "holdout-" if split == "holdout" else ""
        records.append(
            {
                "id": f"{prefix}{kind}-{n + 1:03d}",
                "split": split,
                "source": kind,
                "text": text,
                "spans": gold,
                "protected": protected,
            }
        )
    return records


def main() -> int:
    total = 0
    for kind in KINDS:
        records = build(kind)
        with (HERE / f"{kind}.jsonl").open("w", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        total += len(records)
        print(f"{kind:8} {len(records):4d} snippets")
    holdout = [r for kind in KINDS for r in build(kind, "holdout")]
    with (HERE / "holdout.jsonl").open("w", encoding="utf-8") as fh:
        for record in holdout:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"holdout  {len(holdout):4d} snippets")
    print(f"total    {total + len(holdout):4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
