"""The redaction rules that need no model: protected regions, value rules, profiles and typed
placeholders written by presidio-anonymizer."""

from __future__ import annotations

import pytest

from services.pii_person import may_hold_name
from services.pii_recognizers import SecretRecognizer
from services.pii_regions import heading_lines, protected_regions
from services.pii_values import (
    is_documentation_email,
    is_non_personal_ip,
    is_test_card,
    phone_score,
    ssn_score,
    trim_phone,
)
from services.presidio_redactor import apply_spans
from services.records import EntitySpan
from services.redaction_engine import resolve
from services.redaction_placeholders import Placeholders, anonymize
from services.redaction_profile import SECRET, SUPPORTED_ENTITIES, RedactionProfile

pytestmark = pytest.mark.unit


def kinds(text: str) -> dict[str, str]:
    return {text[r.start : r.end]: r.kind for r in protected_regions(text)}


def test_function_calls_identifiers_and_inline_code_are_protected() -> None:
    found = kinds(
        "now() returns the time; set max_connections, call os.path.join(a, b) on the "
        "HttpClient or run `pg_ctl reload`."
    )
    assert found["now()"] == "function_call"
    assert found["max_connections"] == "identifier"
    assert found["os.path.join(a, b)"] == "function_call"
    assert found["HttpClient"] == "identifier"
    assert found["`pg_ctl reload`"] == "inline_code"


def test_fenced_code_and_table_header_rows_are_protected() -> None:
    text = "| Name | Maximum |\n| --- | --- |\n| a | 1 |\n\n```sql\nSELECT 1;\n```"
    found = kinds(text)
    assert found["| Name | Maximum |"] == "table_header"
    assert found["```sql\nSELECT 1;\n```"] == "code"
    assert "| a | 1 |" not in found  # body rows are text


def test_names_with_inner_capitals_and_e_mail_addresses_are_not_identifiers() -> None:
    found = kinds("Ask Mary McDonald (mary.mcdonald@corp.com) or O'Brien.")
    assert "McDonald" not in found
    assert not any("mcdonald" in k for k in found)


def test_config_keys_are_protected_but_not_their_values() -> None:
    text = "on_call_name = Tomasz Wieczorek\nowner: Hannah Okonkwo"
    found = kinds(text)
    assert found["on_call_name"] in {"identifier", "config_key"}
    assert found["owner"] == "config_key"
    assert not any("Tomasz" in k or "Hannah" in k for k in found)


def test_headings_and_section_paths_are_recognised() -> None:
    assert heading_lines("36.11. Large Objects") == [(0, 20)]
    assert heading_lines("Server Administration > 19.3. Connections")
    assert not heading_lines("Hi Oliver, I attached the NDA. Thanks! Ethan")


@pytest.mark.parametrize(
    "email", ["jane@example.com", "ops@mail.example.org", "a@corp.test", "x@host.invalid"]
)
def test_documentation_addresses_are_not_pii(email: str) -> None:
    assert is_documentation_email(email)


def test_real_addresses_are_pii() -> None:
    assert not is_documentation_email("dana.whitfield@acme-corp.com")
    assert not is_documentation_email("someone@examples.com")


def ip(value: str, text: str | None = None) -> bool:
    text = text if text is not None else f"host {value} md5"
    start = text.index(value)
    return is_non_personal_ip(value, text, start, start + len(value))


@pytest.mark.parametrize(
    "value",
    ["192.0.2.10", "198.51.100.7", "203.0.113.25", "127.0.0.1", "0.0.0.0", "255.255.255.0"],
)
def test_documentation_loopback_and_netmask_addresses_are_not_pii(value: str) -> None:
    assert ip(value)


def test_networks_versions_and_oids_are_not_host_addresses() -> None:
    assert ip("10.0.0.0/8")
    assert ip("2.4.1.7", "Version 2.4.1.7 fixed it")
    assert ip("1.3.6.1", "OID 1.3.6.1.4.1.311")
    assert ip("2001:db8::1")


def test_host_addresses_are_pii_even_in_cidr_notation() -> None:
    assert not ip("10.12.4.31")
    assert not ip("10.66.66.2/32", "Address = 10.66.66.2/32")
    assert not ip("185.37.142.19")


def test_published_test_cards_are_not_pii() -> None:
    assert is_test_card("4111 1111 1111 1111")
    assert not is_test_card("4198 3444 1747 6617")


def phone(text: str, value: str) -> float:
    start = text.index(value)
    start, end = trim_phone(text, start, start + len(value))
    return phone_score(text[start:end], text, start, end)


def test_phone_shapes_are_found_and_look_alikes_are_not() -> None:
    assert phone("asked us to call +1 415 555 0187 about", "+1 415 555 0187") >= 0.5
    assert phone("colleague (212-555-0199) can't", "(212-555-0199") >= 0.5
    assert phone("PO number 4500012345.", "4500012345") < 0.5
    assert phone("tracking 1Z999AA10123456784", "10123456784") < 0.5
    assert phone("released 2024-08-08 and", "2024-08-08") < 0.5


def test_ssn_look_alikes_on_id_lines_are_not_ssns() -> None:
    text = "Part number 100-20-3000 replaces 100-20-2999 in the kit."
    start = text.index("100-20-2999")
    assert ssn_score("100-20-2999", text, start, start + 11, 0.5) < 0.5
    text = "Background check: SSN verified: 774-90-6911."
    start = text.index("774")
    assert ssn_score("774-90-6911", text, start, start + 11, 0.5) >= 0.5


def test_profiles_select_from_the_configured_types() -> None:
    assert RedactionProfile("strict").entities(SUPPORTED_ENTITIES) == frozenset(SUPPORTED_ENTITIES)
    structured = RedactionProfile.STRUCTURED.entities(SUPPORTED_ENTITIES)
    assert "PERSON" not in structured and "IP_ADDRESS" not in structured
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "SECRET"} <= structured
    assert RedactionProfile.NONE.entities(SUPPORTED_ENTITIES) == frozenset()
    assert RedactionProfile.STRICT.entities(["EMAIL_ADDRESS"]) == {"EMAIL_ADDRESS"}


def test_the_same_value_gets_the_same_number_in_one_document() -> None:
    numbering = Placeholders()
    first = "Dana Whitfield met Marcus Bell."
    second = "Later Dana Whitfield wrote to dana@acme-corp.com."
    a = anonymize(first, [EntitySpan(0, 14, "PERSON"), EntitySpan(19, 30, "PERSON")], numbering)
    b = anonymize(
        second, [EntitySpan(6, 20, "PERSON"), EntitySpan(30, 48, "EMAIL_ADDRESS")], numbering
    )
    assert a.text == "<PERSON_1> met <PERSON_2>."
    assert b.text == "Later <PERSON_1> wrote to <EMAIL_ADDRESS_1>."
    assert a.counts == {"PERSON": 2} and b.counts == {"PERSON": 1, "EMAIL_ADDRESS": 1}
    assert numbering.distinct == {"PERSON": 2, "EMAIL_ADDRESS": 1}


def test_placeholders_keep_no_values() -> None:
    numbering = Placeholders()
    numbering.label("PERSON", "Dana Whitfield")
    assert "Dana" not in repr(vars(numbering)) if hasattr(numbering, "__dict__") else True
    assert all(isinstance(k, bytes) for k in numbering._numbers)


def test_phone_numbers_written_two_ways_are_one_value() -> None:
    numbering = Placeholders()
    assert numbering.label("PHONE_NUMBER", "+1 415 555 0187") == numbering.label(
        "PHONE_NUMBER", "+1-415-555-0187"
    )


def test_apply_spans_without_numbering_writes_the_untyped_placeholder() -> None:
    result = apply_spans("Call 212-555-0143 now", [EntitySpan(5, 17, "PHONE_NUMBER")])
    assert result.text == "Call <PHONE_NUMBER> now" and result.counts == {"PHONE_NUMBER": 1}


def test_overlaps_resolve_to_the_longer_structured_value_and_names_lose() -> None:
    spans = [
        EntitySpan(0, 33, "IBAN_CODE"),
        EntitySpan(5, 24, "CREDIT_CARD"),
        EntitySpan(40, 50, "PERSON"),
        EntitySpan(40, 60, "EMAIL_ADDRESS"),
    ]
    assert resolve(spans) == [EntitySpan(0, 33, "IBAN_CODE"), EntitySpan(40, 60, "EMAIL_ADDRESS")]


@pytest.mark.parametrize(
    "text",
    [
        "How many days of paid annual leave do full-time employees get?",
        "Is Python 3.11 supported? What about Windows and Linux?",
        '"Which class may flights be booked in?" she asked.',
        "list the settings. Show me the defaults.",
    ],
)
def test_questions_without_a_possible_name_skip_ner(text: str) -> None:
    assert not may_hold_name(text, protected_regions(text))


@pytest.mark.parametrize(
    "text",
    [
        "How many days of leave does Alice Meyer have left?",
        "Will Turner approved the budget.",  # "Will" opens it, but is a given name too
        "May I ask what June said?",
        "send it to how Grant wants it",
        "the report. Anna wrote it",
    ],
)
def test_a_capitalised_word_that_could_be_a_name_keeps_ner(text: str) -> None:
    assert may_hold_name(text, protected_regions(text))


@pytest.mark.parametrize(
    ("text", "password"),
    [
        ("DATABASE_URL=postgres://billing:q7Rv2LmX9tKp@db01:5432/billing", "q7Rv2LmX9tKp"),
        ("git clone https://deploy:hunter2hunter2@git.corp.local/ops.git", "hunter2hunter2"),
        ("broker redis://:Zk8pQ2mV9xL4@cache:6379/0", "Zk8pQ2mV9xL4"),
    ],
)
def test_the_password_of_a_url_is_a_secret_whatever_its_shape(text: str, password: str) -> None:
    found = SecretRecognizer().analyze(text, [SECRET])
    assert [text[r.start : r.end] for r in found] == [password]


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://user:password@localhost/mydb",
        "mysql://root:${MYSQL_ROOT_PASSWORD}@db/app",
        "http://username:pass@proxy:3128",
        "https://user:<token>@git.corp.local/x.git",
        "https://example.com:8443/path@v2",
        "ssh://git@github.invalid:22/org/repo.git",
    ],
)
def test_url_placeholders_ports_and_users_without_a_password_are_not_secrets(text: str) -> None:
    assert SecretRecognizer().analyze(text, [SECRET]) == []
