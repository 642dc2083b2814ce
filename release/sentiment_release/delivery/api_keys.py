"""The API keys of each environment on this machine: the hash file its service is given
(a Secret, on Kubernetes) and the gates' own key, in <state dir>/api-keys/<env>/.

    hashes     one salted hash per valid key (sentiment/serving/api_keys.py); readable, never a key
    gate.key   the key the gates present (mode 0600): a gate must call the API as a client

Other holders' keys are printed once when made and kept nowhere. On GitHub the two files
come from the environment's secrets (API_KEY_HASHES, GATE_API_KEY): `install`.
"""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentiment.files import atomic_write
from sentiment.serving.api_keys import KEYS_PER_ID, ApiKeyRing, KeyFileError, KeyHash, new_key
from sentiment.serving.api_keys import parse_key_hashes as parse
from sentiment.serving.settings.schema import ENVIRONMENT_NAME
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.support.clock import utc_now

GATE_KEY_ID = "gate"
HASHES_FILE = "hashes"
GATE_KEY_FILE = "gate.key"
LOCK_FILE = ".lock"


class ApiKeyStore:
    def __init__(self, root: Path):
        self.root = root

    def directory(self, environment: str) -> Path:
        if not ENVIRONMENT_NAME.fullmatch(environment):
            raise DeliveryError(f"{environment!r} is not an environment name")
        return self.root / environment

    def hashes_file(self, environment: str) -> Path:
        return self.directory(environment) / HASHES_FILE

    def deployable_hashes_file(self, environment: str) -> Path:
        """The hash file a deploy of `environment` sends (DeliveryError when it lists no
        key): checked before a deploy changes anything."""
        if not self.hashes(environment):
            raise DeliveryError(
                f"{environment} requires API keys and has none here "
                f"({self.hashes_file(environment)}): `make api-keys`, or `sentiment api-keys "
                "install` from the environment's secrets"
            )
        return self.hashes_file(environment)

    def hashes(self, environment: str) -> list[KeyHash]:
        path = self.hashes_file(environment)
        try:
            return parse(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError, KeyFileError) as error:
            raise DeliveryError(f"the API keys of {environment} cannot be read: {error}") from None

    def create(self, environment: str, key_id: str) -> str:
        """A key for a new holder; its hash is added, the key returned (and kept nowhere)."""
        with self._locked(environment):
            if any(item.key_id == key_id for item in self.hashes(environment)):
                raise DeliveryError(
                    f"{environment} has a key {key_id} already: `rotate` gives it a second one"
                )
            return self._add(environment, key_id)

    def rotate(self, environment: str, key_id: str) -> str:
        """A second key for `key_id`, valid beside the first until that one is revoked."""
        with self._locked(environment):
            held = [item for item in self.hashes(environment) if item.key_id == key_id]
            if not held:
                raise DeliveryError(f"{environment} has no key {key_id} to rotate: `create` one")
            if len(held) >= KEYS_PER_ID:
                raise DeliveryError(
                    f"{key_id} has {KEYS_PER_ID} keys in {environment} already: revoke the "
                    "oldest (`revoke --oldest`) once its holder uses the newer one"
                )
            return self._add(environment, key_id)

    def revoke(self, environment: str, key_id: str, oldest_only: bool = False) -> int:
        """Removes `key_id`'s keys (or only the one made first); how many were removed."""
        with self._locked(environment):
            hashes = self.hashes(environment)
            held = sorted(
                (item for item in hashes if item.key_id == key_id), key=lambda i: i.created_at
            )
            if not held:
                raise DeliveryError(f"{environment} has no key {key_id}")
            removed = held[:1] if oldest_only else held
            self._write(environment, [item for item in hashes if item not in removed])
            return len(removed)

    def gate_key(self, environment: str) -> str | None:
        """The key the gates present in `environment`, if this machine has one."""
        try:
            return self.gate_key_file(environment).read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as error:
            raise DeliveryError(f"the gate key of {environment} cannot be read: {error}") from None

    def gate_key_file(self, environment: str) -> Path:
        return self.directory(environment) / GATE_KEY_FILE

    def ensure_gate_key(self, environment: str, rotate: bool = False) -> str:
        """Makes sure the gates hold a key `environment` accepts: kept when it does, else a
        new one (the old gate hashes go). With `rotate`, a second gate key replaces the
        gates' copy while the first stays valid until revoked."""
        with self._locked(environment):
            return self._ensure_gate_key(environment, rotate)

    def _ensure_gate_key(self, environment: str, rotate: bool) -> str:
        current = self.gate_key(environment)
        valid = current is not None and (
            ApiKeyRing(self.hashes(environment)).identify(current) == GATE_KEY_ID
        )
        if valid and not rotate:
            return "kept"
        if valid:
            if sum(item.key_id == GATE_KEY_ID for item in self.hashes(environment)) >= KEYS_PER_ID:
                raise DeliveryError(
                    f"{GATE_KEY_ID} has {KEYS_PER_ID} keys in {environment} already: revoke "
                    "the oldest first"
                )
            key, state = self._add(environment, GATE_KEY_ID), "rotated"
        else:
            hashes = [item for item in self.hashes(environment) if item.key_id != GATE_KEY_ID]
            self._write(environment, hashes)
            key, state = self._add(environment, GATE_KEY_ID), "created"
        self._write_gate_key(environment, key)
        return state

    def install(self, environment: str, hashes_text: str, gate_key: str) -> None:
        """Writes the files from an environment's secrets (CI): the hashes must parse and
        the gate key must be one of them, or nothing is written."""
        try:
            hashes = parse(hashes_text, f"the key hashes of {environment}")
        except KeyFileError as error:
            raise DeliveryError(str(error)) from None
        if not hashes:
            raise DeliveryError(f"the key hashes of {environment} list no key")
        if ApiKeyRing(hashes).identify(gate_key.strip()) != GATE_KEY_ID:
            raise DeliveryError(
                f"the gate key of {environment} is not a key with id {GATE_KEY_ID} of its "
                "key hashes: make both with `sentiment api-keys gate` and set both secrets"
            )
        with self._locked(environment):
            self._write(environment, hashes)
            self._write_gate_key(environment, gate_key.strip())

    @contextmanager
    def _locked(self, environment: str) -> Iterator[None]:
        """One change at a time: each reads the file, changes it and writes it back."""
        directory = self.directory(environment)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        with open(directory / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _add(self, environment: str, key_id: str) -> str:
        try:
            key, hashed = new_key(key_id, utc_now())
        except ValueError as error:
            raise DeliveryError(str(error)) from None
        self._write(environment, [*self.hashes(environment), hashed])
        return key

    def _write_gate_key(self, environment: str, key: str) -> None:
        atomic_write(self.gate_key_file(environment), key.encode("ascii") + b"\n", mode=0o600)

    def _write(self, environment: str, hashes: list[KeyHash]) -> None:
        """Called with the lock held (_locked made the 0700 folder)."""
        header = f"# API keys of {environment}: KEY_ID SALT SHA256(SALT + KEY) CREATED\n"
        text = header + "".join(f"{item.line()}\n" for item in hashes)
        # Readable by the service's own user inside a container; it holds no key.
        atomic_write(self.hashes_file(environment), text.encode("ascii"), mode=0o644)
