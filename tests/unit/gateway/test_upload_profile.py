"""Which redaction profile an upload gets, and who may index raw text."""

from __future__ import annotations

import pytest

from gateway.api.routes.documents import _upload_profile
from gateway.security.keys import Principal
from gateway.settings import RedactionSettings
from services.errors import AccessDeniedError, InvalidRequestError
from services.redaction_profile import RedactionProfile, profile_for_groups

pytestmark = pytest.mark.unit

STRICT, STRUCTURED, NONE = (
    RedactionProfile.STRICT,
    RedactionProfile.STRUCTURED,
    RedactionProfile.NONE,
)
CONFIG = RedactionSettings(
    default_profile=STRICT, group_profiles={"docs": STRUCTURED, "public": NONE}
)
WRITER = Principal(name="writer", groups=("docs",), roles=frozenset({"ingest"}), key_id="k1")
ADMIN = Principal(name="root", groups=(), roles=frozenset({"admin"}), key_id="k2")


def test_a_group_default_applies_and_the_strictest_of_several_wins() -> None:
    assert profile_for_groups(["docs"], STRICT, CONFIG.group_profiles) is STRUCTURED
    assert profile_for_groups(["docs", "hr"], STRICT, CONFIG.group_profiles) is STRICT
    assert profile_for_groups(["docs", "public"], STRICT, CONFIG.group_profiles) is STRUCTURED
    assert profile_for_groups([], STRUCTURED, {}) is STRUCTURED


def test_the_upload_names_its_profile_or_inherits_its_groups() -> None:
    assert _upload_profile(None, True, ["docs"], CONFIG, WRITER) is STRUCTURED
    assert _upload_profile(STRICT, True, ["docs"], CONFIG, WRITER) is STRICT
    assert _upload_profile(None, True, ["hr"], CONFIG, ADMIN) is STRICT


def test_only_an_admin_indexes_raw_text() -> None:
    with pytest.raises(AccessDeniedError):
        _upload_profile(NONE, True, ["docs"], CONFIG, WRITER)
    with pytest.raises(AccessDeniedError):
        _upload_profile(None, False, ["docs"], CONFIG, WRITER)
    assert _upload_profile(None, False, ["docs"], CONFIG, ADMIN) is NONE
    assert _upload_profile(NONE, True, ["docs"], CONFIG, ADMIN) is NONE


def test_contradicting_flags_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="contradicts"):
        _upload_profile(STRICT, False, ["docs"], CONFIG, ADMIN)


def test_redaction_switched_off_in_config_indexes_raw_text() -> None:
    off = RedactionSettings(enabled=False)
    assert _upload_profile(None, True, ["docs"], off, WRITER) is NONE
