"""wrk (Debian's package), driven with a request body from a file and parsed."""

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.process import CommandError, find_tool, run

# The body's and the API key's files arrive as script arguments: nothing is written into
# the script, and the key is on no command line.
SCRIPT = """
function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] then
    local key = assert(io.open(args[2], "rb"))
    wrk.headers["Authorization"] = "Bearer " .. key:read("*l")
    key:close()
  end
end
"""
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class LoadResult:
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    # Socket errors plus answers that were not 2xx: a fast server that fails does not win.
    errors: int


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def parse(output: str, connections: int) -> LoadResult:
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rate and p50 and p99):
        raise ReleaseError(f"wrk printed no rate or latency:\n{output}")
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = sum(map(int, socket_errors.groups())) if socket_errors else 0
    errors += int(non_2xx[1]) if non_2xx else 0
    return LoadResult(connections, float(rate[1]), _milliseconds(p50[1]),
                      _milliseconds(p99[1]), errors)  # fmt: skip


def load(
    url: str,
    body: bytes,
    connections: int,
    seconds: float,
    core: int | None,
    api_key: str | None = None,
) -> LoadResult:
    """POSTs `body` to `url` from `connections` connections for `seconds` (with `api_key`
    as a bearer token, if any); wrk is pinned to `core` (taskset) so it takes one core and
    the server the rest."""
    wrk = find_tool("wrk")
    if wrk is None:
        raise ReleaseError("wrk is not installed (apt-get install wrk)")
    pin = ["taskset", "-c", str(core)] if core is not None else []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        script, body_file = Path(scratch) / "post.lua", Path(scratch) / "body.json"
        script.write_text(SCRIPT)
        body_file.write_bytes(body)
        script_args = [str(body_file)]
        if api_key:
            key_file = Path(scratch) / "key"
            key_file.write_text(api_key + "\n")
            script_args.append(str(key_file))
        argv = [*pin, wrk, "--threads", "1", "--connections", str(connections),
                "--duration", f"{max(1, round(seconds))}s", "--latency", "--timeout", "10s",
                "--script", str(script), url, "--", *script_args]  # fmt: skip
        try:
            output = run(argv, timeout=seconds + 60).stdout
        except CommandError as error:
            raise ReleaseError(f"wrk against {url}: {error}") from None
    return parse(output, connections)
