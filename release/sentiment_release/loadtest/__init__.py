"""Load tests anyone can run against an environment or a URL (`sentiment loadtest`):
profiles from config/loadtest.yaml, locust headless or with its UI, runs kept and compared."""
