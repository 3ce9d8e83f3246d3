"""Property-based fuzzing of the gateway's OpenAPI schema: no input makes it answer 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway_schema(live_stack: LiveStack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_stack.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("gateway_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(
    case: schemathesis.Case, live_stack: LiveStack
) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {live_stack.handbook_key}"},
        checks=[not_a_server_error],
        timeout=300,
    )
