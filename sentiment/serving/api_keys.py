"""API keys: their format, the salted hashes the service keeps instead of them, the check.

A key is `snt_<key id>_<43 characters>`: 32 random bytes (URL-safe base64) after an id
that names its holder. The service never holds a key, only one line per key:

    <key id> <salt, hex> <sha256(salt + key), hex> <created, ISO 8601>

The 256 random bits make a fast salted SHA-256 safe (nobody guesses such a key from its
hash); a slow password hash would cost milliseconds on every request and protect nothing
more. A key id may have two keys at once, so a holder can move to a new one (rotation)
before the old one is revoked.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

PREFIX = "snt_"
KEY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
SECRET = re.compile(r"[A-Za-z0-9_-]{43}")
CREATED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
SECRET_BYTES = 32
SALT_BYTES = 16
# A key id has at most this many valid keys: the current one and its successor.
KEYS_PER_ID = 2
# Longer than any key: refused before it is hashed.
MAX_KEY_CHARS = len(PREFIX) + 32 + 1 + 43


class KeyFileError(ValueError):
    """A key-hash file cannot be used; the message names the line."""


@dataclass(frozen=True)
class KeyHash:
    key_id: str
    salt: bytes
    digest: bytes
    created_at: str

    def line(self) -> str:
        return f"{self.key_id} {self.salt.hex()} {self.digest.hex()} {self.created_at}"

    def matches(self, key: bytes) -> bool:
        return hmac.compare_digest(hashlib.sha256(self.salt + key).digest(), self.digest)


def new_key(key_id: str, created_at: datetime) -> tuple[str, KeyHash]:
    """A fresh key for `key_id` and the hash line the service keeps of it."""
    if not KEY_ID.fullmatch(key_id):
        raise ValueError(f"{key_id!r} is not a key id (lower-case letters, digits and -, up to 32)")
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.sha256(salt + key.encode("ascii")).digest()
    return key, KeyHash(key_id, salt, digest, created_at.isoformat(timespec="seconds"))


def parse_key_hashes(text: str, source: str = "the key-hash file") -> list[KeyHash]:
    """The hash lines of `text`, in order; blank lines and `#` comments are skipped."""
    hashes: list[KeyHash] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{source}, line {number}"
        if len(fields) != 4:
            raise KeyFileError(f"{where}: expected 'KEY_ID SALT SHA256 CREATED'")
        key_id, salt, digest, created_at = fields
        if not KEY_ID.fullmatch(key_id):
            raise KeyFileError(f"{where}: {key_id!r} is not a key id")
        try:
            salt_bytes, digest_bytes = bytes.fromhex(salt), bytes.fromhex(digest)
        except ValueError:
            raise KeyFileError(f"{where}: the salt and the hash must be hex") from None
        if len(salt_bytes) != SALT_BYTES or len(digest_bytes) != hashlib.sha256().digest_size:
            raise KeyFileError(f"{where}: a {SALT_BYTES}-byte salt and a sha256 are expected")
        if not CREATED.fullmatch(created_at):
            raise KeyFileError(f"{where}: {created_at!r} is not a UTC time (ISO 8601)")
        hashes.append(KeyHash(key_id, salt_bytes, digest_bytes, created_at))
    for key_id in {item.key_id for item in hashes}:
        if sum(item.key_id == key_id for item in hashes) > KEYS_PER_ID:
            raise KeyFileError(
                f"{source}: key id {key_id} has more than {KEYS_PER_ID} keys "
                "(the current one and its successor); revoke the oldest"
            )
    return hashes


class ApiKeyRing:
    """The keys a service accepts, by id: `identify` names the holder of a key, or None."""

    def __init__(self, hashes: list[KeyHash]):
        self._by_id: dict[str, list[KeyHash]] = {}
        for item in hashes:
            self._by_id.setdefault(item.key_id, []).append(item)
        # Compared against when the id is unknown, so every refusal costs one hash.
        self._decoy = KeyHash("decoy", secrets.token_bytes(SALT_BYTES), bytes(32), "")
        # Keys found valid, by their sha256: a client's next request costs one hash, not
        # KEYS_PER_ID salted ones. Only valid keys enter it, so the key file bounds it;
        # a refusal always goes the whole way.
        self._known: dict[bytes, str] = {}

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._by_id)

    def __len__(self) -> int:
        return sum(len(items) for items in self._by_id.values())

    def identify(self, key: str) -> str | None:
        """The id of the valid key `key`, or None (malformed, unknown or revoked)."""
        if len(key) > MAX_KEY_CHARS or not key.startswith(PREFIX) or not key.isascii():
            return None
        encoded = key.encode("ascii")
        fingerprint = hashlib.sha256(encoded).digest()
        known = self._known.get(fingerprint)
        if known is not None:
            return known
        key_id, _, secret = key[len(PREFIX) :].partition("_")
        candidates = self._by_id.get(key_id, []) if SECRET.fullmatch(secret) else []
        # Always KEYS_PER_ID comparisons, padded with the decoy (whose all-zero hash nothing
        # matches), none skipped: the time says nothing about the id or its key count.
        padded = [*candidates, *[self._decoy] * (KEYS_PER_ID - len(candidates))]
        matched = [item.matches(encoded) for item in padded]
        if not any(matched):
            return None
        self._known[fingerprint] = key_id
        return key_id
