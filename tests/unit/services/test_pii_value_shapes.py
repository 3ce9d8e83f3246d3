"""Values written in shapes Presidio's own patterns miss: an IBAN in lower case, a card number
in dotted groups. The real recognizers (Presidio, spaCy's model), no services."""

from __future__ import annotations

import pytest

from services.pii_recognizers import GatedIbanRecognizer
from services.presidio_redactor import PresidioRedactor

pytestmark = pytest.mark.unit


def found(redactor: PresidioRedactor, text: str) -> dict[str, str]:
    return {text[s.start : s.end]: s.entity_type for s in redactor.find(text)}


@pytest.mark.parametrize(
    "iban",
    [
        "de89 3704 0044 0532 0130 00",  # typed in a chat, lower case with its groups
        "gb82west12345698765432",  # pasted without groups
        "Fr14 2004 1010 0505 0001 3m02 606",  # mixed case
    ],
)
def test_an_iban_in_lower_or_mixed_case_is_found(redactor: PresidioRedactor, iban: str) -> None:
    assert found(redactor, f"please send it to {iban} by friday") == {iban: "IBAN_CODE"}


def test_a_lower_case_run_that_fails_the_iban_check_is_kept(redactor: PresidioRedactor) -> None:
    # the same shape, wrong check digits: mod-97 keeps it
    assert found(redactor, "ticket de00 3704 0044 0532 0130 00 was closed") == {}
    assert found(redactor, "the key is ab12cd34 and the build is rc12 0001") == {}


def test_an_iban_followed_by_a_word_is_cut_back_to_the_iban(redactor: PresidioRedactor) -> None:
    # read whole, Presidio's match runs on into the next word and fails its check
    for text, iban in [
        ("Pay DE89 3704 0044 0532 0130 00 FROM ACCOUNT 7 TODAY", "DE89 3704 0044 0532 0130 00"),
        ("refund to be68539007547034 yesterday, see 4471", "be68539007547034"),
        ("details lu32 1993 9337 2754 7736 received by mail", "lu32 1993 9337 2754 7736"),
    ]:
        assert found(redactor, text) == {iban: "IBAN_CODE"}, text


def test_an_iban_beside_a_letter_with_a_longer_capital_keeps_its_offsets() -> None:
    text = "Straße: de89 3704 0044 0532 0130 00."
    assert len(text.upper()) != len(text)  # "ß".upper() is "SS"
    (result,) = GatedIbanRecognizer().analyze(text, ["IBAN_CODE"])
    assert text[result.start : result.end] == "de89 3704 0044 0532 0130 00"


@pytest.mark.parametrize(
    "card",
    ["4666.1760.3137.2159", "5279.9075.1163.7265", "6011.0658.9481.1311", "3744.024264.62889"],
)
def test_a_card_number_in_dotted_groups_is_found(redactor: PresidioRedactor, card: str) -> None:
    assert found(redactor, f"card {card}, exp 09/27.") == {card: "CREDIT_CARD"}


@pytest.mark.parametrize(
    "text",
    [
        "release 4666.1760.3137.2158 is out",  # the same shape, Luhn fails
        "node 4666.1760.3137.2159.5 and 5.4666.1760.3137.2159",  # a longer dotted number
        "the total was 4666.17 and then 1.5279.9075.1163",  # decimals, too few groups
        "test card 4111.1111.1111.1111 in the docs",  # the documented test number stays
    ],
)
def test_dotted_numbers_that_are_no_card_are_kept(redactor: PresidioRedactor, text: str) -> None:
    assert "CREDIT_CARD" not in found(redactor, text).values()
