"""Request limits come from config: these tests shrink them."""

import json

import pytest


@pytest.fixture
def service_overrides():
    return {
        "service.max_batch_size": 3,
        "service.max_review_chars": 50,
        "service.max_body_bytes": 2048,
    }


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"reviews": []}, 422, "empty_batch"),
        ({"reviews": ["a", "b", "c", "d"]}, 422, "batch_too_large"),
        ({"reviews": ["fine", "x" * 51]}, 422, "review_too_long"),
        ({"reviews": ["fine", " "]}, 422, "empty_review"),
        ({"reviews": ["fine", 3]}, 400, "invalid_request"),
        ({"reviews": "one"}, 400, "invalid_request"),
        ({"review": "wrong endpoint"}, 400, "invalid_request"),
    ],
)
def test_bad_batches_get_a_json_4xx(client, payload, status, code):
    response = client.post("/v1/predict", json=payload)
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_limits_come_from_config(client):
    assert client.post("/predict/", json={"review": "x" * 50}).status_code == 200
    too_long = client.post("/predict/", json={"review": "x" * 51})
    assert too_long.status_code == 422
    assert "limit is 50" in too_long.get_json()["error"]["message"]
    ok = client.post("/v1/predict", json={"reviews": ["a", "b", "c"]})
    assert ok.status_code == 200


def test_a_body_over_the_limit_is_413(client):
    response = client.post("/predict/", data=json.dumps({"review": "x" * 3000}))
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
