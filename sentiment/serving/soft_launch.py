"""Soft launch: which model answers a request, and whether the challenger also scores it.

Canary: a stable share of the clients is answered by the challenger. A client is its API
key id where keys are asked for (so one client sees one model), else the request id; its
place in [0, 1) is a keyed hash, so the split is the same in every worker and pod and no
client can pick its side. Shadow: a share of the requests, by the same hash of the request
id, is also scored by the challenger after the answer (sentiment/serving/recorder.py); the champion
answers.
"""

import hashlib

from sentiment.model import Scorer
from sentiment.serving.settings.schema import SoftLaunchSettings

HASH_KEY = b"sentiment-soft-launch"
# Which model answered ("champion" or "challenger"), on every answer while a canary runs.
ANSWERED_BY_HEADER = "X-Answered-By"


def place(value: str) -> float:
    """Where a client or request falls in [0, 1): the same for the same value, anywhere."""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8,
                             key=HASH_KEY).digest()  # fmt: skip
    return int.from_bytes(digest, "big") / 2**64


class SoftLaunch:
    def __init__(self, settings: SoftLaunchSettings, challenger: Scorer | None):
        self.mode = settings.mode if challenger is not None else "off"
        self.challenger = challenger
        self._shadow_share = settings.shadow_share
        self._canary_share = settings.canary_share

    @property
    def says_who_answered(self) -> bool:
        """Responses carry X-Answered-By while a canary runs."""
        return self.mode == "canary"

    def answering(self, key_id: str | None, request_id: str) -> Scorer | None:
        """The challenger when it answers this request (canary), else None."""
        if self.mode != "canary":
            return None
        return self.challenger if place(key_id or request_id) < self._canary_share else None

    def shadowing(self, request_id: str) -> Scorer | None:
        """The challenger when it scores this request in the shadows, else None."""
        if self.mode != "shadow":
            return None
        return self.challenger if place(request_id) < self._shadow_share else None
