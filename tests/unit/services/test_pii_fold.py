"""The folded copy PII is looked for in, and the map from its spans back to the original."""

from __future__ import annotations

import pytest

from services.pii_fold import fold
from services.redaction_placeholders import Placeholders

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("536\u201122\u20118145", "536-22-8145"),  # non-breaking hyphens
        ("4556\u00a07375\u202f8689\u20079855", "4556 7375 8689 9855"),  # no-break spaces
        ("jane\u200b.roe\u00ad@acme\u2060-corp.com\ufeff", "jane.roe@acme-corp.com"),  # invisible
        (
            "\uff4a\uff41\uff4e\uff45\uff20\uff41\uff43\uff4d\uff45.com",
            "jane@acme.com",
        ),  # fullwidth
        ("\u0665\u0663\u0666-\u0662\u0662-\u0668\u0661\u0664\u0665", "536-22-8145"),  # Arabic-Indic
        ("\u0967\u0968\u0969\u2212\u096a", "123-4"),  # Devanagari digits, minus sign
        ("5\u03363\u03366\u0336", "536"),  # a strike-through over each digit
    ],
)
def test_look_alike_characters_read_as_the_ascii_a_recognizer_matches(
    written: str, read: str
) -> None:
    assert fold(f"see {written} now").text == f"see {read} now"


def test_a_dash_between_spaces_is_punctuation_and_stays() -> None:
    text = "Jenny \u2014 call 555\u20130199, pages 12\u201314"
    assert fold(text).text == "Jenny \u2014 call 555-0199, pages 12-14"


def test_spans_map_back_to_the_original_characters_invisible_ones_inside_included() -> None:
    text = "SSN \u0665\u200b3\u200b6-22-8145 filed; mail r.o\u200b@x\u00adyz.org."
    folded = fold(text)
    ssn = folded.text.index("536-22-8145")
    start, end = folded.original_span(ssn, ssn + len("536-22-8145"))
    assert text[start:end] == "\u0665\u200b3\u200b6-22-8145"
    mail = folded.text.index("r.o@xyz.org")
    start, end = folded.original_span(mail, mail + len("r.o@xyz.org"))
    assert text[start:end] == "r.o\u200b@x\u00adyz.org"


def test_a_character_that_folds_to_two_maps_back_whole() -> None:
    text = "the \ufb01le at 10\u00a0am"  # the fi ligature reads as two letters
    folded = fold(text)
    assert folded.text == "the file at 10 am"
    assert folded.original_span(4, 6) == (4, 5)  # "fi" is the one ligature
    assert folded.original_span(4, 8) == (4, 7)


def test_ascii_text_is_its_own_copy() -> None:
    text = "Dana Whitfield, 536-22-8145, dana@acme-corp.com"
    folded = fold(text)
    assert folded.text is text
    assert folded.original_span(5, 14) == (5, 14)


def test_characters_with_no_ascii_reading_are_kept() -> None:
    text = "Gr\u00fc\u00dfe aus M\u00fcnchen, \u00bd Tag, caf\u00e9"
    assert fold(text).text == text


def test_a_value_written_with_look_alikes_gets_the_number_of_its_plain_form() -> None:
    numbering = Placeholders()
    plain = numbering.label("US_SSN", "536-22-8145")
    assert numbering.label("US_SSN", "536\u201122\u20118145") == plain
    mail = numbering.label("EMAIL_ADDRESS", "jane@acme.com")
    assert numbering.label("EMAIL_ADDRESS", "jane\u200b\uff20acme.com") == mail
