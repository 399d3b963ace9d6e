"""Schemathesis against the app's own OpenAPI schema over real HTTP: no input may cause a 500."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error


def test_no_request_causes_a_server_error(live, loaded) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/c/{token}", "/ack/{token}", "/webhooks/sendgrid", "/healthz"}
    calls: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:
            calls.append(operation.path)
            case.call_and_validate(checks=[not_a_server_error])

        run()
    assert len(calls) >= 5 * len(operations)  # every operation was really exercised
