"""PII canaries for the sink sweep: one value of every redacted entity type per place it enters
(document body, section heading, file name, upload metadata, question), so a find names both
the type and the way in. Values are valid of their kind (Luhn, IBAN mod 97) and made up; some
are written as people write them and Presidio's own patterns miss (a card in dotted groups, an
IBAN in lower case)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from services.redaction_profile import SUPPORTED_ENTITIES

ORIGINS = ("body", "heading", "filename", "metadata", "question")
ENTITIES = SUPPORTED_ENTITIES  # every type the redactor knows, in its report order
_PEOPLE = (
    ("Beatrix", "Vandermolen"),
    ("Cornelius", "Ashgrove"),
    ("Philippa", "Dunmore"),
    ("Leopold", "Farnsworth"),
    ("Rosalind", "Quillfeather"),
)
_MAILBOXES = (
    "tamsin.orrery@kestrelworks.com",
    "jm.brackwater@lindenfield.org",
    "h.selwyn-tor@harrowgate.net",
    "otto.grimsdale@brightmoor.io",
    "ines.malvoro@corvinhall.co.uk",
)
_AREAS = ("415", "646", "312", "617", "206")


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def _iban(bban: str) -> str:
    numeric = "".join(str(int(c, 36)) for c in bban + "DE00")
    check = 98 - int(numeric) % 97
    raw = f"DE{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))


_DOTTED_CARDS = ("body", "heading")
_LOWER_CASE_IBANS = ("body", "question")


def _cased(iban: str, origin: str) -> str:
    return iban.lower() if origin in _LOWER_CASE_IBANS else iban


@dataclass(frozen=True, slots=True)
class Pii:
    entity: str
    origin: str
    value: str

    def variants(self) -> list[str]:
        """The value and the forms a sink may keep it in (digits only, no spaces, surname)."""
        forms = {self.value}
        if self.entity in {"PHONE_NUMBER", "US_SSN", "CREDIT_CARD"}:
            forms.add(re.sub(r"\D", "", self.value))
        if self.entity in {"IBAN_CODE", "CREDIT_CARD"}:
            forms.add(self.value.replace(" ", "").replace(".", ""))
        if self.entity == "PERSON":
            forms.add(self.value.split()[-1])
        return sorted(forms)


def canaries() -> list[Pii]:
    rng = random.Random(1616)
    out: list[Pii] = []
    for i, origin in enumerate(ORIGINS):
        first, last = _PEOPLE[i]
        secret = "AKIA" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ234567") for _ in range(16))
        values = {
            "PERSON": f"{first} {last}",
            "EMAIL_ADDRESS": _MAILBOXES[i],
            "PHONE_NUMBER": f"({_AREAS[i]}) {rng.randint(230, 989)}-{rng.randint(1000, 9999)}",
            "US_SSN": f"{536 + 37 * i:03d}-{22 + 11 * i:02d}-{rng.randint(1000, 9999)}",
            # grouped by spaces, or by dots in a body and a heading (as some forms write it)
            "CREDIT_CARD": ("." if origin in _DOTTED_CARDS else " ").join(
                re.findall(
                    ".{4}", _luhn("4539" + "".join(rng.choice("0123456789") for _ in range(11)))
                )
            ),
            # in capitals, or in lower case in a body and a question (as people type it)
            "IBAN_CODE": _cased(
                _iban("".join(rng.choice("0123456789") for _ in range(18))), origin
            ),
            "IP_ADDRESS": f"10.{44 + i}.{213 - 7 * i}.{97 + i}",
            "SECRET": secret,
        }
        out += [Pii(entity, origin, values[entity]) for entity in ENTITIES]
    return out


def of(values: list[Pii], origin: str) -> dict[str, str]:
    return {p.entity: p.value for p in values if p.origin == origin}


def found_in(text: str, values: list[Pii], origin: str) -> list[str]:
    """``ENTITY 'variant'`` for every canary of ``origin`` that ``text`` holds (case-blind)."""
    folded = text.casefold()
    return [
        f"{p.entity} {form!r}"
        for p in values
        if p.origin == origin
        for form in p.variants()
        if form.casefold() in folded
    ]
