"""What an attacker sends a real gunicorn server, byte by byte: broken chunked bodies,
floods of bad keys, the open endpoints hammered. Each is answered with a 4xx and a JSON
body, cheaply, and the server goes on serving."""

import json
import socket
import time

import pytest
import requests

from sentiment.serving.api_keys import new_key
from sentiment_release.support.clock import utc_now

pytestmark = pytest.mark.integration

HEAD = b"POST /predict/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
BODY = b'{"review": "fine"}'
# Chunked bodies a parser must refuse (RFC 9112 section 7.1): sizes that are not hex, too
# big, negative, prefixed, with no line end, bodies longer or shorter than their size.
MALFORMED = {
    "size in 0x notation": b"0x12\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size not hex": b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",
    "negative size": b"-12\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size with a plus": b"+12\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size with spaces inside": b"1 2\r\n" + BODY + b"\r\n0\r\n\r\n",
    "no CRLF after the data": b"12\r\n" + BODY + b"0\r\n\r\n",
    "data longer than its size": b"10\r\n" + BODY + b"\r\n0\r\n\r\n",
    "bare LF line ends": b"12\n" + BODY + b"\n0\n\n",
    "size past 64 bits": b"1" + b"0" * 20 + b"\r\n" + BODY + b"\r\n0\r\n\r\n",
    "empty size line": b"\r\n" + BODY + b"\r\n0\r\n\r\n",
    "bad chunk extension": b"12;\x01\r\n" + BODY + b"\r\n0\r\n\r\n",
    "size 0x18": b"0x18\r\n" + BODY + b"\r\n0\r\n\r\n",
}


def exchange(url: str, raw: bytes, timeout: float = 10) -> bytes:
    """Sends `raw` on a new connection and returns everything answered until it closes
    (or nothing more comes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(raw)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


def first_answer(received: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, rest = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    length = int(headers["Content-Length"])
    return int(lines[0].split()[1]), headers, rest[:length]


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_broken_chunked_body_is_a_400_in_json(base_url, body):
    status, headers, answer = first_answer(exchange(base_url, HEAD + body))
    assert status == 400, answer
    assert headers["Content-Type"] == "application/json"
    assert json.loads(answer)["error"]["code"] in {"malformed_body", "invalid_json"}


def test_a_well_formed_chunked_body_is_scored(base_url):
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
    status, _, answer = first_answer(exchange(base_url, HEAD + body))
    assert status == 200, answer
    assert set(json.loads(answer)) == {"positive", "negative", "model_version"}


def test_the_server_still_serves_after_the_broken_bodies(base_url):
    for body in MALFORMED.values():
        exchange(base_url, HEAD + body)
    response = requests.post(f"{base_url}/predict/", json={"review": "good"}, timeout=10)
    assert response.status_code == 200


@pytest.fixture
def keyed(own_server, trained_registry, tmp_path):
    key, hashed = new_key("acme", utc_now())
    (tmp_path / "hashes").write_text(hashed.line() + "\n")
    server = own_server(tmp_path / "server", trained_registry, workers=2, settings={
        "SENTIMENT_AUTH__REQUIRED": "true",
        "SENTIMENT_AUTH__KEY_HASHES_FILE": str(tmp_path / "hashes"),
        "SENTIMENT_AUTH__REFUSALS": '{"per_second": 1, "burst": 10}',
    })  # fmt: skip
    return server, key


def test_bad_keys_from_one_address_are_refused_429_soon_and_good_keys_never(keyed):
    """Refusals are limited per address across both workers: guessing keys stays slow."""
    server, key = keyed
    wrong = {"Authorization": "Bearer snt_acme_" + "A" * 43}
    with requests.Session() as session:
        codes = [session.post(f"{server.base_url}/predict/", json={"review": "x"},
                              headers=wrong, timeout=10).status_code
                 for _ in range(30)]  # fmt: skip
        assert codes.count(401) <= 10 + 2  # the burst, and what a second or two allow
        assert codes[-1] == 429
        good = session.post(f"{server.base_url}/predict/", json={"review": "fine"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=10)  # fmt: skip
        assert good.status_code == 200
        refused = session.post(f"{server.base_url}/predict/", json={"review": "x"},
                               headers=wrong, timeout=10)  # fmt: skip
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


def test_the_api_description_is_made_once_and_answered_fast(base_url):
    """It is open to anyone: it must not cost what building it costs."""
    with requests.Session() as session:
        first = session.get(f"{base_url}/openapi.json", timeout=10)
        started = time.perf_counter()
        for _ in range(50):
            again = session.get(f"{base_url}/openapi.json", timeout=10)
        seconds = (time.perf_counter() - started) / 50
    assert again.content == first.content
    assert first.json()["openapi"].startswith("3.1")
    print(f"/openapi.json: {seconds * 1000:.2f} ms per request")
