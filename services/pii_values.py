"""Rules on a found value and the words around it: what is documentation, what is a look-alike.

- E-mail addresses at documentation names (RFC 2606 / RFC 6761: example.com/.net/.org and their
  subdomains, the .test, .example, .invalid and .localhost TLDs, localhost) are not PII.
- IP addresses in documentation ranges (RFC 5737 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24;
  RFC 3849 2001:db8::/32), loopback, unspecified, link-local, multicast and reserved addresses,
  netmasks, network prefixes (``10.0.0.0/8``), parts of a longer dotted number (a version
  ``2.4.1.7``, an OID ``1.3.6.1.4.1.311``) and well-known public resolvers are not PII.
- Card numbers published for payment testing (``4111 1111 1111 1111``) are not PII.
- A phone number needs the shape of one (``+`` and a country code, ``(415) 555-0187``,
  ``415-555-0187``, ``415.555.0187``) or a phone word nearby, and is not a date, an ID after
  "order", "invoice", "ISBN"..., nor part of an IP address.
- An SSN-shaped number after "part", "order", "EIN", "case"... is not an SSN; an undelimited
  nine-digit number is one only with "SSN" / "social security" nearby.
"""

from __future__ import annotations

import ipaddress
import re

_DOC_DOMAINS = ("example.com", "example.net", "example.org")
_DOC_TLDS = ("test", "example", "invalid", "localhost")

_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)
_PUBLIC_RESOLVERS = frozenset(
    {"1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9", "149.112.112.112", "208.67.222.222"}
)
_TEST_CARDS = frozenset(
    {
        "4111111111111111",
        "4242424242424242",
        "4000056655665556",
        "5555555555554444",
        "5105105105105100",
        "2223003122003222",
        "378282246310005",
        "371449635398431",
        "6011111111111117",
        "6011000990139424",
        "3056930009020004",
        "4012888888881881",
        "4000000000000002",
        "4000000000009995",
        "5200828282828210",
    }
)

_PHONE_WORDS = re.compile(
    r"\b(phone|tel|telephone|mobile|cell|call|text|sms|fax|whatsapp|hotline|dial|reach|"
    r"callback|contact)\b",
    re.I,
)
_ID_WORDS = re.compile(
    r"(order|invoice|inv|po|isbn|issn|routing|account|acct|tracking|serial|ticket|case|"
    r"ref|reference|batch|build|version|release|part|sku|ein|id|no|number|#)[\s.:#-]*$",
    re.I,
)
_PHONE_SHAPE = re.compile(
    r"^(?:\+\d{1,3}[\s.\-]?(?:\(\d{1,4}\)[\s.\-]?)?\d{1,5}(?:[\s.\-]\d{1,5}){1,5}|"
    r"\+\d{8,15}|"
    r"(?:1[\s.\-])?\(\d{3}\)[\s.\-]?\d{3}[\s.\-]\d{4}|"
    r"(?:1[\s.\-])?\d{3}([\s.\-])\d{3}\1\d{4})$"
)
_DATE_SHAPE = re.compile(r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")
_VERSION_BEFORE = re.compile(r"(?i)\b(?:version|release|build|ver|v)\.?[ \t]*$")
_SSN_WORDS = re.compile(r"\b(ssn|ssns|social\s+security|tin|taxpayer)\b", re.I)
_ID_WORD_ON_LINE = re.compile(
    r"(?i)\b(part|order|invoice|case|ticket|ein|phone|tel|fax|ref|model|serial|sku|replaces)\b"
)
_NOT_SSN_BEFORE = re.compile(
    r"(part|order|invoice|case|ticket|ein|phone|tel|fax|ref|model|serial|sku|pn|po|zip)"
    r"[\s.:#-]*(number|no\.?|#)?[\s.:#-]*$",
    re.I,
)


def is_documentation_email(value: str) -> bool:
    domain = value.rsplit("@", 1)[-1].lower().rstrip(".")
    if domain == "localhost" or domain.rsplit(".", 1)[-1] in _DOC_TLDS:
        return True
    return any(domain == d or domain.endswith("." + d) for d in _DOC_DOMAINS)


def _is_netmask(address: ipaddress.IPv4Address) -> bool:
    bits = int(address)
    inverted = ~bits & 0xFFFFFFFF
    return bits != 0 and (inverted & (inverted + 1)) == 0 and str(address).startswith("255.")


def is_non_personal_ip(value: str, text: str, start: int, end: int) -> bool:
    """True for addresses that identify no host of anyone's: see the module docstring."""
    before, after = text[max(0, start - 2) : start], text[end : end + 4]
    if re.search(r"\d\.$", before) or re.match(r"\.\d", after):
        return True  # part of a longer dotted number: a version or an OID
    if _VERSION_BEFORE.search(text[max(0, start - 12) : start]):
        return True
    address_text, _, prefix_text = value.partition("/")
    if not prefix_text:
        suffix = re.match(r"/(\d{1,3})", after)
        prefix_text = suffix.group(1) if suffix else ""
    try:
        address = ipaddress.ip_address(address_text.split("%")[0])
    except ValueError:
        return True  # not an address at all
    if prefix_text.isdigit() and int(prefix_text) < address.max_prefixlen:
        network = ipaddress.ip_network(f"{address}/{prefix_text}", strict=False)
        if network.network_address == address:
            return True  # a network, not a host
    if any(address in net for net in _DOC_NETS) or str(address) in _PUBLIC_RESOLVERS:
        return True
    if isinstance(address, ipaddress.IPv4Address) and _is_netmask(address):
        return True
    return (
        address.is_loopback
        or address.is_unspecified
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
    )


def is_test_card(value: str) -> bool:
    return re.sub(r"\D", "", value) in _TEST_CARDS


def trim_phone(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop an unbalanced parenthesis and edge punctuation python-phonenumbers leaves on."""
    value = text[start:end]
    while value and ((value[0] == "(" and value.count("(") > value.count(")")) or value[0] in " ["):
        value, start = value[1:], start + 1
    while value and (
        (value[-1] == ")" and value.count(")") > value.count("(")) or value[-1] in " ]"
    ):
        value, end = value[:-1], end - 1
    return start, end


def phone_score(value: str, text: str, start: int, end: int) -> float:
    """0 for a look-alike, 0.4 for a bare number, 0.7 with the shape or the words of a phone."""
    stripped = value.strip()
    if _DATE_SHAPE.match(stripped):
        return 0.0
    if re.match(r"^[\d.]+$", stripped) and stripped.count(".") == 3:
        return 0.0  # an IPv4 address
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_/"):
        return 0.0  # the tail of a longer token (a tracking number, an ID)
    if re.match(r"[\w]|\.\d|/\d", text[end : end + 2]):
        return 0.0
    before = text[max(0, start - 24) : start]
    if _ID_WORDS.search(before) and not _PHONE_WORDS.search(before):
        return 0.0
    digits = re.sub(r"\D", "", stripped)
    if not 7 <= len(digits) <= 15:
        return 0.0
    context = _PHONE_WORDS.search(text[max(0, start - 60) : start]) is not None
    if _PHONE_SHAPE.match(stripped):
        return 0.7 if (stripped.startswith(("+", "(")) or context or len(digits) >= 10) else 0.4
    return 0.6 if context else 0.2


def ssn_score(value: str, text: str, start: int, end: int, base: float) -> float:
    """Presidio's pattern score, raised by SSN words in the text, zeroed after ID words (in
    the 24 characters before it, or anywhere on its line when no SSN word is in the text)."""
    if _NOT_SSN_BEFORE.search(text[max(0, start - 24) : start]):
        return 0.0
    delimited = re.fullmatch(r"\d{3}([- .])\d{2}\1\d{4}", value) is not None
    if _SSN_WORDS.search(text):
        return 0.85 if delimited or re.fullmatch(r"\d{9}", value) else base
    line_start = text.rfind("\n", 0, start) + 1
    if _ID_WORD_ON_LINE.search(text[line_start:start]):
        return 0.0
    return 0.5 if delimited and "-" in value else min(base, 0.3)
