"""Redaction profiles: which kinds of PII a redaction replaces.

- ``strict``: every configured entity type, names found by NER included (HR, finance, mail).
- ``structured``: only values with a checkable shape (e-mail addresses, phone numbers, SSNs,
  card numbers, IBANs, keys and secrets); no NER names, no IP addresses. Technical manuals keep
  every word, while a pasted key or a support e-mail address is still replaced.
- ``none``: nothing is replaced (for admins; the gateway decides who may choose it).

The profile is chosen per call (per upload, per access group); the configured entity list of a
redactor is the universe a profile selects from, so an admin who drops a type drops it from all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

PERSON = "PERSON"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
PHONE_NUMBER = "PHONE_NUMBER"
US_SSN = "US_SSN"
CREDIT_CARD = "CREDIT_CARD"
IBAN_CODE = "IBAN_CODE"
IP_ADDRESS = "IP_ADDRESS"
SECRET = "SECRET"  # API keys, tokens, passwords and private keys (Holdfast's own recognizer)

#: Every type this redactor knows how to find, in the order reports list them.
SUPPORTED_ENTITIES: tuple[str, ...] = (
    PERSON,
    EMAIL_ADDRESS,
    PHONE_NUMBER,
    US_SSN,
    CREDIT_CARD,
    IBAN_CODE,
    IP_ADDRESS,
    SECRET,
)

#: Types whose values have a checkable shape (a checksum, a format, a key prefix).
STRUCTURED_ENTITIES = frozenset(
    {EMAIL_ADDRESS, PHONE_NUMBER, US_SSN, CREDIT_CARD, IBAN_CODE, SECRET}
)


class RedactionProfile(StrEnum):
    """How much a redaction replaces; parse from configuration with ``RedactionProfile(name)``."""

    STRICT = "strict"
    STRUCTURED = "structured"
    NONE = "none"

    def entities(self, configured: Iterable[str]) -> frozenset[str]:
        """The entity types this profile redacts, out of those a redactor is configured with."""
        universe = frozenset(configured)
        if self is RedactionProfile.STRICT:
            return universe
        if self is RedactionProfile.STRUCTURED:
            return universe & STRUCTURED_ENTITIES
        return frozenset()

    @property
    def strictness(self) -> int:
        """Order for combining profiles: ``none`` < ``structured`` < ``strict``."""
        return _STRICTNESS[self]


_STRICTNESS = {RedactionProfile.NONE: 0, RedactionProfile.STRUCTURED: 1, RedactionProfile.STRICT: 2}


def profile_for_groups(
    groups: Iterable[str],
    default: RedactionProfile,
    per_group: Mapping[str, RedactionProfile],
) -> RedactionProfile:
    """The profile an upload gets when it names none: the strictest of its groups' defaults, so a
    document shared with HR is redacted as HR's documents are."""
    chosen = [per_group.get(group, default) for group in groups] or [default]
    return max(chosen, key=lambda profile: profile.strictness)
