"""Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis), over
real HTTP: valid and invalid requests alike must never get a 5xx, every answer must match
the documented status codes, content type and schema, and invalid data must be refused."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.plugins.ray_cluster import ServiceUnderTest

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
OPERATIONS = [
    ("POST", "/v1/apps/{app}/decisions"),
    ("POST", "/v1/apps/{app}/decisions:batch"),
    ("POST", "/v1/apps/{app}/slates"),
    ("POST", "/v1/apps/{app}/rewards"),
    ("POST", "/v1/apps/{app}/events/{event_id}/activate"),
    ("GET", "/v1/apps"),
    ("GET", "/v1/apps/{app}"),
    ("PATCH", "/v1/apps/{app}"),
    ("POST", "/v1/apps/{app}/discovery"),
    ("GET", "/v1/apps/{app}/quarantine"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/v1/apps/{app}/erasures"),
    ("POST", "/v1/apps/{app}/pseudonym-keys:rotate"),
    ("GET", "/v1/apps/{app}/audit"),
    ("GET", "/v1/apps/{app}/report"),
    ("GET", "/v1/report"),
]
# Documented but not fuzzed: each call trains the app's policy once per namespace over up to
# 50,000 logged events (tests/test_privacy_api.py covers it).
NOT_FUZZED = {("GET", "/v1/apps/{app}/feature-importance")}
EXAMPLES = 30
# A discovery run is a search over a log, not a request's worth of work: fewer examples.
EXAMPLES_FOR = {"/v1/apps/{app}/discovery": 6}
# Operations without parameters or a body have no invalid input to generate.
NO_INPUT = {"/healthz", "/readyz", "/metrics"}
CASES = [
    (mode, method, path)
    for method, path in OPERATIONS
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or path not in NO_INPUT
]


@pytest.fixture(scope="module")
def api_schema(banditrec_service: ServiceUnderTest):
    schema = schemathesis.openapi.from_url(banditrec_service.url + "/openapi.json")
    schema.config.update(base_url=banditrec_service.url)
    return schema


def test_every_operation_is_fuzzed(api_schema) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS) | NOT_FUZZED


@pytest.mark.parametrize(("mode", "method", "path"), CASES)
def test_api_holds_its_contract_under_fuzzing(
    api_schema, banditrec_service: ServiceUnderTest, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    headers = banditrec_service.headers("admin")
    strategies = [operation.as_strategy(mode)]
    # PATCH is left to random apps: fuzzed configs must not change the apps other tests use.
    if "{app}" in path and method != "PATCH":
        # Half the cases on a real app, so bodies get past the 404 into validation.
        strategies.append(operation.as_strategy(mode, path_parameters={"app": "content"}))

    @given(case=st.one_of(strategies))
    @settings(
        max_examples=EXAMPLES_FOR.get(path, EXAMPLES),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()
