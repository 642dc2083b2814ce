"""The load-test profiles' shape (config/loadtest.yaml, run by `sentiment loadtest`):
stages one after the other, each `users` clients for `seconds`, reached at `spawn_rate`.
The stages come as JSON in SENTIMENT_LOADTEST_STAGES. Passed to locust beside the
locustfile (-f locustfile.py,shapes.py), so the gates' fixed runs have no shape."""

import json
import os

from locust import LoadTestShape

STAGES_VARIABLE = "SENTIMENT_LOADTEST_STAGES"


def stages_from_environment() -> list[dict]:
    text = os.environ.get(STAGES_VARIABLE)
    if not text:
        raise SystemExit(f"{STAGES_VARIABLE} is not set: run this through `sentiment loadtest`")
    return json.loads(text)


class ProfileShape(LoadTestShape):
    def __init__(self) -> None:
        super().__init__()
        self.stages = stages_from_environment()

    def tick(self) -> tuple[int, float] | None:
        elapsed = self.get_run_time()
        end = 0.0
        for stage in self.stages:
            end += stage["seconds"]
            if elapsed < end:
                return stage["users"], stage["spawn_rate"]
        return None
