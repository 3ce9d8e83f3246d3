"""A cue word ("Thanks.", "Hi") makes the next capitalised word a name only when it can be one:
the first word of the next sentence is not. The real recognizers and spaCy's model."""

from __future__ import annotations

import pytest

from services.presidio_redactor import PresidioRedactor

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    [
        "Thanks. The contact address on the form is out of date.",
        "Thanks! This is done. Regards. Our team will follow up.",
        "Dear all. Please find the minutes attached.",
    ],
)
def test_a_sentence_after_a_cue_keeps_its_first_word(redactor: PresidioRedactor, text: str) -> None:
    assert redactor.redact(text).text == text


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Thanks, An will call you back.", "An"),  # after a comma: addressed, a name
        ("Thanks. Dana will call you back.", "Dana"),  # a given name opens the sentence
        ("Hi Will, the report is late.", "Will"),
    ],
)
def test_a_name_after_a_cue_is_still_redacted(
    redactor: PresidioRedactor, text: str, name: str
) -> None:
    assert name not in redactor.redact(text).text
