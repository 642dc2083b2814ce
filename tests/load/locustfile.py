"""The test gate's traffic. ApiClient: clients with think time, mostly single reviews, some
batches, a few metadata and health calls (the `load` check). CapacityClient: single
reviews back to back, no think time, through locust's fast HTTP client: how many the
service sustains (the `capacity` check). Name the class to run one of them.

Reviews are the dataset's where SENTIMENT_LOADTEST_REVIEWS names a file of them (as
`sentiment loadtest` does); else sentences of reviews.txt joined into texts of varied
length, from one short sentence to a long paragraph, the way real reviews vary. Run
headless by the gate (`sentiment promote --to test`), by `sentiment loadtest` with a
profile's shape (shapes.py), or by hand:
    locust -f tests/load/locustfile.py --host http://127.0.0.1:8002 ApiClient
with SENTIMENT_API_KEY=KEY in the environment for a service that asks for keys.
"""

import itertools
import os
import random
from pathlib import Path

from locust import FastHttpUser, HttpUser, between, constant, task


def _lines(path: Path) -> list[str]:
    # "\n" only: dataset reviews may hold U+0085, which splitlines() would split on.
    return [line.strip() for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


SENTENCES = _lines(Path(__file__).parent / "reviews.txt")
# Real reviews, one per line (`sentiment loadtest` writes the dataset's): sent as they
# are, so requests have the lengths real traffic has.
REVIEWS_FILE = os.environ.get("SENTIMENT_LOADTEST_REVIEWS")
REVIEWS = _lines(Path(REVIEWS_FILE)) if REVIEWS_FILE else []
BATCH_SIZES = (2, 8, 32)


def _body(response) -> dict:
    try:
        return response.json() if response.status_code == 200 else {}
    except ValueError:
        return {}


def review(rng: random.Random) -> str:
    if REVIEWS:
        return rng.choice(REVIEWS)
    # Mostly short reviews, a long tail of long ones.
    count = min(int(rng.expovariate(1 / 3)) + 1, 25)
    return " ".join(rng.choice(SENTENCES) for _ in range(count))


def api_key_headers() -> dict[str, str]:
    """The gate's API key, where the service asks for one (gates.checks.base)."""
    key = os.environ.get("SENTIMENT_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


class ApiClient(HttpUser):
    wait_time = between(0.05, 0.25)

    def on_start(self) -> None:
        self.rng = random.Random()  # noqa: S311  (traffic, not secrets)
        self.client.headers.update(api_key_headers())

    @task(12)
    def predict_one(self) -> None:
        with self.client.post(
            "/predict/", json={"review": review(self.rng)}, catch_response=True
        ) as response:
            body = _body(response)
            if not 0.0 <= body.get("positive", -1.0) <= 1.0:
                response.failure(f"{response.status_code}: no positive score in {body}")

    @task(3)
    def predict_batch(self) -> None:
        size = self.rng.choice(BATCH_SIZES)
        reviews = [review(self.rng) for _ in range(size)]
        with self.client.post(
            "/v1/predict", json={"reviews": reviews}, name=f"/v1/predict [{size}]",
            catch_response=True,
        ) as response:  # fmt: skip
            body = _body(response)
            if len(body.get("predictions", [])) != size:
                response.failure(f"{response.status_code}: expected {size} predictions")

    @task(1)
    def model_info(self) -> None:
        self.client.get("/v1/model")

    @task(1)
    def health(self) -> None:
        self.client.get("/readyz")
        self.client.get("/healthz")


class CapacityClient(FastHttpUser):
    """The next request as soon as the last is answered: the rate is the service's."""

    wait_time = constant(0)
    seeds = itertools.count()

    def on_start(self) -> None:
        # The same texts every run (each client its own sequence): runs compare the
        # service, not the traffic.
        self.rng = random.Random(next(CapacityClient.seeds))  # noqa: S311  (not secrets)
        self.headers = api_key_headers()

    @task
    def predict_one(self) -> None:
        with self.client.post(
            "/predict/", json={"review": review(self.rng)}, headers=self.headers,
            catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
