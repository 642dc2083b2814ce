"""Who may sign which gate's evidence: config/trust.yaml, the public keys it names, and
this machine's own key pairs.

    config/trust.yaml          per gate, the committed public keys (config/keys/*.pub)
                               whose signatures count; their private halves are the
                               GitHub environments' EVIDENCE_SIGNING_KEY secrets
    <state dir>/keys/<gate>    this machine's pair for a gate (`sentiment keys create`),
                               trusted here only while trust.yaml's local_keys is true

Evidence is signed by `sentiment sign <gate>`, a process of its own that runs after the
checks: with the key given to it (on GitHub the environment's EVIDENCE_SIGNING_KEY
secret, which only that step sees), else with this machine's pair for the gate.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict
from securesystemslib.signer import CryptoSigner, Key

from sentiment.files import atomic_write
from sentiment.serving.settings.schema import ENVIRONMENT_NAME, EnvironmentName, YamlSettings
from sentiment_release.gates.isolation import SIGNING_KEY_VARIABLE, Isolation, forbidden_patterns
from sentiment_release.support.config import load_yaml_settings
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.signing import generate_key_pair, load_public_key, load_signer

TRUST_FILE = "trust.yaml"


class SigningKeyError(ReleaseError):
    """No key to sign a gate's evidence with, or one whose evidence would never count."""


class TrustSettings(YamlSettings):
    model_config = SettingsConfigDict(
        env_prefix="TRUST_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    schema_version: Literal[1]
    # Whether this machine's own pairs (<state dir>/keys) count.
    local_keys: bool
    # A record that finished later than now plus this is refused: clocks differ a little.
    max_clock_skew_seconds: int = Field(ge=0, le=3600)
    # Per gate, public key files under config/keys/.
    gates: dict[EnvironmentName, list[str]]
    # The variables a check's processes see (a trailing * matches a prefix); never a
    # signing key or a token (sentiment_release/gates/isolation.py NEVER).
    check_environment: list[str]

    @field_validator("check_environment")
    @classmethod
    def _no_secrets(cls, allowed: list[str]) -> list[str]:
        leaking = forbidden_patterns(allowed)
        if leaking:
            raise ValueError(
                f"{', '.join(leaking)} would let signing keys or tokens reach the checks"
            )
        return allowed

    def key_files(self, gate: str) -> list[str]:
        return self.gates.get(gate, [])


def load_trust_settings(config_dir: Path) -> TrustSettings:
    settings = load_yaml_settings(TrustSettings, config_dir / TRUST_FILE, "TRUST_* variables")
    for gate, files in settings.gates.items():
        for name in files:
            path = Path(name)
            if path.is_absolute() or path.parts[:1] != ("keys",) or ".." in path.parts:
                raise ReleaseError(
                    f"{config_dir / TRUST_FILE}: gates.{gate}: {name!r} is not a file under "
                    "keys/ (public keys are committed in config/keys/)"
                )
    return settings


@dataclass(frozen=True)
class TrustedKey:
    key: Key
    gate: str
    source: str  # the file it came from


class TrustedKeys:
    def __init__(self, settings: TrustSettings, config_dir: Path, local_dir: Path):
        self.settings = settings
        self.config_dir = config_dir
        self.local_dir = local_dir
        self._trusted: dict[str, dict[str, TrustedKey]] | None = None

    @property
    def max_clock_skew_seconds(self) -> int:
        return self.settings.max_clock_skew_seconds

    def trusted(self, gate: str) -> dict[str, TrustedKey]:
        """The keys whose signature counts on `gate`'s evidence, by key id: that gate's
        own. A key trusted for two gates is refused (ReleaseError): a key vouches for one
        gate, whatever a record signed with it claims."""
        return self._every_gate().get(gate, {})

    def owner(self, key_id: str) -> str | None:
        """The gate `key_id` is trusted for, if any."""
        for gate, found in self._every_gate().items():
            if key_id in found:
                return gate
        return None

    def _every_gate(self) -> dict[str, dict[str, TrustedKey]]:
        if self._trusted is None:
            local = set()
            if self.settings.local_keys and self.local_dir.is_dir():
                local = {p.stem for p in self.local_dir.glob("*.pub")
                         if ENVIRONMENT_NAME.fullmatch(p.stem)}  # fmt: skip
            gates = sorted({*self.settings.gates, *local})
            every = {gate: self._read_trusted(gate) for gate in gates}
            owners: dict[str, str] = {}
            for gate, found in every.items():
                for key_id, key in found.items():
                    if key_id in owners:
                        other = owners[key_id]
                        raise ReleaseError(
                            f"key {key_id[:16]} is trusted for both {other} and {gate} "
                            f"({every[other][key_id].source}, {key.source}): one gate, one "
                            "key, or one environment's jobs could vouch for another's gate"
                        )
                    owners[key_id] = gate
            self._trusted = every
        return self._trusted

    def _read_trusted(self, gate: str) -> dict[str, TrustedKey]:
        found: dict[str, TrustedKey] = {}
        for name in self.settings.key_files(gate):
            path = self.config_dir / name
            try:
                key = load_public_key(path.read_bytes(), str(path))
            except FileNotFoundError:
                raise ReleaseError(
                    f"{self.config_dir / TRUST_FILE} names {name} for {gate}, which does not exist"
                ) from None
            found[key.keyid] = TrustedKey(key, gate, str(path))
        local = self._local_public(gate)
        if self.settings.local_keys and local.is_file():
            key = load_public_key(local.read_bytes(), str(local))
            found[key.keyid] = TrustedKey(key, gate, str(local))
        return found

    def signer(self, gate: str, private_pem: bytes | None = None, source: str = "") -> CryptoSigner:
        """What signs `gate`'s evidence: the key given (`private_pem`, read from `source`),
        else this machine's pair for the gate. Only the signing step calls this, in a
        process of its own after the checks. SigningKeyError when there is nothing to
        sign with, or its signature would not count."""
        if private_pem is None:
            self.check_local(gate)
            path = self._local_private(gate)
            private_pem, source = path.read_bytes(), str(path)
        signer = load_signer(private_pem, source)
        if signer.public_key.keyid not in self.trusted(gate):
            raise SigningKeyError(
                f"the key in {source} (id {signer.public_key.keyid[:16]}) is not trusted for "
                f"{gate} (config/trust.yaml"
                + ("" if self.settings.local_keys else ", local_keys: false")
                + "): its evidence would never count"
            )
        return signer

    def check_local(self, gate: str) -> None:
        """SigningKeyError unless this machine's pair for `gate` would sign evidence that
        counts; its private half is not read."""
        public = self._local_public(gate)
        if not self.settings.local_keys:
            raise SigningKeyError(
                f"this machine's keys do not count (config/trust.yaml local_keys: false): the "
                f"{gate} gate's evidence is signed with the key of its environment, given to "
                f"`sentiment sign {gate} --key-file` (on GitHub, the {SIGNING_KEY_VARIABLE} "
                "secret, in the signing step only)"
            )
        if not self._local_private(gate).is_file() or not public.is_file():
            raise SigningKeyError(
                f"no key to sign the {gate} gate's evidence with: run `make keys` (a key pair "
                f"per gate on this machine), or, on GitHub, set the {SIGNING_KEY_VARIABLE} "
                f"secret of the {gate} environment (README: Signing keys)"
            )
        key = load_public_key(public.read_bytes(), str(public))
        if key.keyid not in self.trusted(gate):
            raise SigningKeyError(f"{public} is not trusted for {gate}")

    def isolation(self) -> Isolation:
        """How checks run here: the allowed environment, and never where they can read
        this machine's private keys."""
        return Isolation(tuple(self.settings.check_environment), (self.local_dir,))

    def create_local(self, gate: str, replace: bool = False) -> tuple[str, bool]:
        """This machine's key pair for `gate`: its id, and whether it was made now."""
        private, public = self._local_private(gate), self._local_public(gate)
        if private.is_file() and public.is_file() and not replace:
            return load_public_key(public.read_bytes(), str(public)).keyid, False
        pair = generate_key_pair()
        self.local_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.local_dir, 0o700)
        atomic_write(private, pair.private_pem, mode=0o600)
        atomic_write(public, pair.public_pem)
        self._trusted = None
        return pair.key_id, True

    def _local_private(self, gate: str) -> Path:
        return self.local_dir / f"{gate}.pem"

    def _local_public(self, gate: str) -> Path:
        return self.local_dir / f"{gate}.pub"
