"""Rate limits on a real gunicorn server, two workers of 32 threads each: a key hammering
the service gets exactly its rate (one budget for both workers), a key below its rate
never sees a 429, and every refusal is a JSON 429 with Retry-After."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sentiment_release.delivery.api_keys import ApiKeyStore

pytestmark = pytest.mark.integration

REVIEW = {"review": "Lovely staff, great food."}
PER_SECOND, BURST = 50, 10
SECONDS = 3.0


@pytest.fixture
def served(own_server, trained_registry, tmp_path):
    store = ApiKeyStore(tmp_path / "api-keys")
    keys = {key_id: store.create("stage", key_id) for key_id in ("eager", "calm")}
    settings = {
        "SENTIMENT_AUTH__REQUIRED": "true",
        "SENTIMENT_AUTH__KEY_HASHES_FILE": str(store.hashes_file("stage")),
        "SENTIMENT_RATE_LIMIT__ENABLED": "true",
        "SENTIMENT_RATE_LIMIT__PER_SECOND": str(PER_SECOND),
        "SENTIMENT_RATE_LIMIT__BURST": str(BURST),
    }
    server = own_server(tmp_path / "server", trained_registry, workers=2, settings=settings)
    return server.base_url, keys


def hammer(url: str, key: str, until: float, statuses: list, refusals: list) -> None:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {key}"
        while time.monotonic() < until:
            response = session.post(f"{url}/predict/", json=REVIEW, timeout=10)
            statuses.append(response.status_code)
            if response.status_code == 429:
                refusals.append((response.headers.get("Retry-After"), response.json()))


def paced(url: str, key: str, until: float, every: float, statuses: list) -> None:
    with requests.Session() as session:
        session.headers["X-API-Key"] = key
        next_at = time.monotonic()
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            statuses.append(session.post(f"{url}/predict/", json=REVIEW, timeout=10).status_code)
            next_at += every


def test_exactly_the_rate_across_workers_and_nothing_refused_below_it(served):
    url, keys = served
    eager: list[int] = []
    calm: list[int] = []
    refusals: list = []
    started = time.monotonic()
    until = started + SECONDS
    with ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(hammer, url, keys["eager"], until, eager, refusals)
                for _ in range(6)]  # fmt: skip
        # Two clients of one key, together at half its rate.
        jobs += [pool.submit(paced, url, keys["calm"], until, 4 / PER_SECOND, calm)
                 for _ in range(2)]  # fmt: skip
        for job in jobs:
            job.result()
    elapsed = time.monotonic() - started

    admitted = eager.count(200)
    assert set(eager) == {200, 429}
    assert eager.count(429) > admitted  # it did ask for more than its rate
    # The budget: the burst, then PER_SECOND a second. Requests in flight at either end
    # (a few ms, more on a busy machine) are the only slack; two workers each with its own
    # budget would double it.
    assert BURST + PER_SECOND * (elapsed - 0.5) <= admitted <= BURST + PER_SECOND * elapsed + 1
    assert set(calm) == {200}
    assert len(calm) >= PER_SECOND / 4 * SECONDS * 0.8
    retry_after, body = refusals[0]
    assert retry_after == "1"
    assert body["error"]["code"] == "rate_limited"
    assert all(refusal == refusals[0] for refusal in refusals)
