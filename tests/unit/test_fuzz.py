"""schemathesis generates requests from /openapi.json: none may get a 5xx or break the document.

Driven through hypothesis directly: schemathesis' pytest plugin does not support pytest 9.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from sentiment.serving.app import create_app
from tests.conftest import make_settings

SCORING = ["POST /predict/", "POST /predict", "POST /v1/predict"]
OPERATIONS = [*SCORING, "GET /v1/model", "GET /readyz", "GET /healthz"]
# Negative cases break the request schema; operations without inputs have none to break.
CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label in SCORING
]


@pytest.fixture(scope="module")
def api_schema(trained_registry):
    app = create_app(make_settings("test", **{"model.bundles_dir": trained_registry}))
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_every_documented_operation_is_fuzzed(api_schema):
    labels = {result.ok().label for result in api_schema.get_all_operations()}
    assert set(OPERATIONS) <= labels


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_generated_requests_get_documented_answers(api_schema, label, mode):
    method, path = label.split(" ")
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        # A review the schema allows may still get a documented 422 (a lone
        # surrogate, say), so "valid data is accepted" is not this API's property.
        # schemathesis' own rejection check does not count 413 (a body over the size
        # limit) as a rejection, so negative cases are checked here instead.
        response = case.call_and_validate(
            excluded_checks=[positive_data_acceptance, negative_data_rejection]
        )
        if mode is GenerationMode.NEGATIVE:
            assert response.status_code in (400, 413, 422), response.text[:300]

    check()
