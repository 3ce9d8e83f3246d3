"""The Presidio recognizers Holdfast runs, chosen for an en-US deployment.

Presidio's default registry loads recognizers for many countries; some match US values (the
UK NHS recognizer scores US phone numbers 1.0). Only these run here: spaCy NER (PERSON),
e-mail, phone (python-phonenumbers, US numbers and any number written with ``+`` and a country
code), US SSN, credit card (Luhn; digits grouped by spaces, hyphens or dots), IBAN (mod-97, in
any letter case, gated), IP address, and ``SecretRecognizer``.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from presidio_analyzer import (
    EntityRecognizer,
    LocalRecognizer,
    Pattern,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IbanRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    SpacyRecognizer,
    UsSsnRecognizer,
)
from presidio_analyzer.predefined_recognizers.generic.iban_patterns import regex_per_country

from services.redaction_profile import SECRET
from services.regex_held import held, hold_gil_in

PHONE_REGIONS = ("US",)

# Well-known key formats (their vendors document the prefixes), then "name = value" assignments
# whose name says secret and whose value looks random. (name, pattern, needs a randomness check,
# anchor: what a text must hold for the pattern to match in it; ``pii_screen`` looks for it)
_SECRET_PATTERNS: list[tuple[str, str, bool, str]] = [
    (
        "aws access key id",
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b",
        False,
        "AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA",
    ),
    (
        "github token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{40,})\b",
        False,
        "gh[pousr]_|github_pat_",
    ),
    ("slack token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", False, "xox[abposr]-"),
    (
        "gitlab token",
        r"\bgl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_\-]{20,}",
        False,
        "gl(?:pat|dt|rt|ptt|cbt)-",
    ),
    ("npm token", r"\bnpm_[A-Za-z0-9]{36}\b", False, "npm_"),
    ("stripe key", r"\b(?:sk|rk)_live_[A-Za-z0-9]{16,}\b", False, "_live_"),
    ("webhook secret", r"\bwhsec_[A-Za-z0-9+/=]{16,}", False, "whsec_"),
    ("google api key", r"\bAIza[0-9A-Za-z_\-]{35}\b", False, "AIza"),
    ("openai-style key", r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{32,}\b", False, "sk-"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}", False, "eyJ"),
    (
        "pem private key",
        r"(?<=PRIVATE KEY-----\n)[A-Za-z0-9+/=\n]{40,}?(?=\n-----END)",
        False,
        "PRIVATE KEY-----",
    ),
    (
        "assigned secret",
        r"(?i)(?<![\w])[\w.\-]*(?:passw(?:or)?d|pass|pwd|secret|token|api[_\-]?key|access[_\-]?key|"
        r"private[_\-]?key)[\w.\-]*[\"']?[ \t]*[:=][ \t]*[\"']?\K[^\s\"'$<>{}()\[\],;]{8,}",
        True,
        "[:=]",
    ),
    ("bearer token", r"(?i)\bBearer[ \t]+\K[A-Za-z0-9\-._~+/]{20,}=*", True, "(?i:bearer)"),
    # the password of "scheme://user:password@host": whatever its shape, the position says what
    # it is (hunter2 is no less a password for looking like a word)
    ("url password", r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:\K[^\s:/@]{3,}(?=@)", False, "://"),
]
#: A text holding none of the patterns' anchors holds no secret they could find.
SECRET_ANCHORS = "|".join(f"(?:{anchor})" for _, _, _, anchor in _SECRET_PATTERNS)
_COMPILED: list[tuple[str, Any, bool]] = [
    (label, held(p), check) for label, p, check, _ in _SECRET_PATTERNS
]

_PLACEHOLDER = held(
    r"(?i)example|changeme|change-me|password|placeholder|your[_\-]|xxxx|\*\*\*|<|\$\{|%\("
    r"|^(?:pass|passwd|pwd|pw|secret|pass(?:wd|word)?\d{0,3}|user|username|\.+|x+)$"
)


_HEX = held(r"[0-9a-fA-F]{20,}")
_DIGIT = held(r"\d")
_DOTTED_NAME = held(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_CHARACTER_CLASSES = tuple(held(p) for p in ("[a-z]", "[A-Z]", r"\d", r"[^\w]"))


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_random(value: str) -> bool:
    """A long hex string, or a digit among three character classes with some entropy (not a
    word, not a dotted name such as ``pre_tokenizers.ByteLevel``)."""
    if _HEX.fullmatch(value):
        return True
    if not _DIGIT.search(value) or _DOTTED_NAME.fullmatch(value):
        return False
    classes = sum(bool(p.search(value)) for p in _CHARACTER_CLASSES)
    return classes >= 3 and _entropy(value) >= 3.0


class SecretRecognizer(LocalRecognizer):
    """API keys, tokens, private keys and passwords; documented example keys are skipped."""

    SCORE = 0.9

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entities=[SECRET],
            supported_language=supported_language,
            name="SecretRecognizer",
        )

    def load(self) -> None:
        pass

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None
    ) -> list[RecognizerResult]:
        results = []
        for label, pattern, check in _COMPILED:
            for m in pattern.finditer(text):
                value = m.group(0)
                if _PLACEHOLDER.search(value) or (check and not looks_random(value)):
                    continue
                results.append(
                    RecognizerResult(
                        SECRET,
                        m.start(),
                        m.end(),
                        self.SCORE,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: "SecretRecognizer",
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            "pattern_name": label,
                        },
                    )
                )
        return EntityRecognizer.remove_duplicates(results)


class RuleContext(ContextAwareEnhancer):
    """Presidio's context step, left to Holdfast's rules: ``pii_values`` and ``pii_person`` read
    the words around a value themselves (also when spaCy ran only its tokenizer, without the
    lemmas Presidio's own enhancer needs)."""

    def __init__(self) -> None:
        super().__init__(0.0, 0.0, 0, 0)

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: Any,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        return raw_results


#: Every match of Presidio's IBAN pattern starts with a country code and two check digits, its
#: own ``[A-Z]{2}[0-9]{2}``; ``tests/unit/services/test_regex_held.py`` pins the pattern.
IBAN_START = r"[A-Z]{2}[0-9]{2}"


class GatedIbanRecognizer(IbanRecognizer):
    """Presidio's IBAN recognizer, run only on a text that holds what every IBAN starts with,
    and also finding IBANs written in lower or mixed case.

    - Gate: its matching calls ``regex.finditer`` on the pattern's string (no compiled pattern to
      hold, see ``services/regex_held.py``), so each analysis lets go of the GIL once and may wait
      up to 5 ms to take it back. Questions rarely hold a country code and check digits; the
      gate, a held pattern compiled with the recognizer's own flags, keeps the GIL for them and
      finds the same IBANs, since it is the start of the recognizer's own pattern.
    - Any case: Presidio's pattern matches capitals only, so ``de89 3704 0044 0532 0130 00``,
      typed as people type in chats and e-mails, was kept; and its match runs on into a next
      word of four capitals or digits (``... 0130 00 FROM``), then fails its own check. A run
      that starts like an IBAN and that Presidio's pass did not find is read in capitals and cut
      back group by group until Presidio's own check (mod-97 and the country's format) passes.
      Read whole, ``... 7736 received`` would run on into the next word and fail too."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(supported_language=supported_language)
        self._gate = held(IBAN_START, self.global_regex_flags or 0)

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: Any = None,
        regex_flags: int | None = None,
    ) -> list[RecognizerResult]:
        found: list[RecognizerResult] = []
        if self._gate.search(text) is not None:
            found = list(super().analyze(text, entities, nlp_artifacts))  # ignores regex_flags
        for run in _ANY_CASE_RUN.finditer(text):
            if run.group()[:2].upper() not in IBAN_COUNTRIES:
                continue  # a hash or a part number: no country's IBAN starts so
            if any(r.start < run.end() and run.start() < r.end for r in found):
                continue  # Presidio's own pass found it
            hit = self._longest_valid_start(text, run.start(), run.end(), entities)
            if hit is not None:
                found.append(hit)
        return found

    def _longest_valid_start(
        self, text: str, start: int, end: int, entities: list[str]
    ) -> RecognizerResult | None:
        """The longest IBAN, read in capitals, that ``text[start:end]`` begins with."""
        ends = [g.end() for g in _GROUP.finditer(text, start + 4, end)]
        for stop in reversed(ends):
            for hit in super().analyze(text[start:stop].upper(), entities):
                if hit.start == 0 and hit.end == stop - start:
                    hit.start, hit.end = start, stop
                    return hit
        return None


#: the countries whose IBAN format Presidio checks
IBAN_COUNTRIES = frozenset(regex_per_country)
# the start of an IBAN in any case and what may follow it; _GROUP: one group of it
_ANY_CASE_RUN = held(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}(?:[ -]?[A-Za-z0-9]{1,4}){2,9}")
_GROUP = held(r"[ -]?[A-Za-z0-9]{1,4}")


# Presidio's card pattern predates Mastercard's 2-series (2221-2720, issued since 2017).
_MASTERCARD_2 = Pattern(
    "Mastercard 2-series (weak)",
    r"\b2(?:2(?:2[1-9]|[3-9]\d)|[3-6]\d{2}|7(?:[01]\d|20))[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b",
    0.3,
)
# Presidio's card pattern groups digits with spaces or hyphens; a card written in dotted groups
# (4111.1111.1111.1111, as some European forms and pasted exports do) was kept. Every gap must be
# a dot, so a decimal number or a dotted version does not start a match; Luhn decides the rest.
_DOTTED_CARD = Pattern(
    "Card in dotted groups (weak)",
    r"(?<![\d.])(?:[2-6]\d{3}\.\d{4}\.\d{4}\.\d{4}|3[47]\d{2}\.\d{6}\.\d{5})(?!\d|\.\d)",
    0.3,
)
_CARD_SEPARATORS = [("-", ""), (" ", ""), (".", "")]


def build_registry(language: str, entities: frozenset[str]) -> RecognizerRegistry:
    """Only the recognizers for ``entities``, and only those that fit an en-US deployment."""
    registry = RecognizerRegistry(supported_languages=[language])
    makers: dict[str, Any] = {
        "PERSON": lambda: SpacyRecognizer(
            supported_language=language, supported_entities=["PERSON"]
        ),
        "EMAIL_ADDRESS": lambda: EmailRecognizer(supported_language=language),
        "PHONE_NUMBER": lambda: PhoneRecognizer(
            supported_language=language, supported_regions=PHONE_REGIONS, leniency=0
        ),
        "US_SSN": lambda: UsSsnRecognizer(supported_language=language),
        "CREDIT_CARD": lambda: CreditCardRecognizer(
            supported_language=language,
            patterns=[*CreditCardRecognizer.PATTERNS, _MASTERCARD_2, _DOTTED_CARD],
            replacement_pairs=_CARD_SEPARATORS,
        ),
        "IBAN_CODE": lambda: GatedIbanRecognizer(supported_language=language),
        "IP_ADDRESS": lambda: IpRecognizer(supported_language=language),
        SECRET: SecretRecognizer,
    }
    for entity in sorted(entities):
        if entity in makers:
            registry.add_recognizer(hold_gil_in(makers[entity]()))
    return registry
