"""Property-based fuzzing of the gateway's OpenAPI schema: no input makes it answer 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration


def test_no_generated_request_gets_a_server_error(live_stack: LiveStack) -> None:
    schema = schemathesis.openapi.from_url(f"{live_stack.url}/openapi.json")
    auth = {"Authorization": f"Bearer {live_stack.handbook_key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/query", "/v1/search", "/v1/chat/completions"}
    statuses: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call_and_validate(
                headers=auth, checks=[not_a_server_error], timeout=300
            )
            statuses.append(response.status_code)

        fuzz()
    assert len(statuses) >= 5 * len(operations), "the fuzzer must really send requests"
