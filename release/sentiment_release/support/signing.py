"""Ed25519 key pairs and DSSE envelopes, with securesystemslib: signing a payload, and
verifying an envelope against the keys one trusts, saying exactly why it fails.

Keys are PEM files: the private half PKCS#8, the public half SubjectPublicKeyInfo (what
`openssl pkey -pubout` prints). A key's id is securesystemslib's: a hash of the key.
"""

import binascii
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import CryptoSigner, Key, Signature, SSlibKey

from sentiment_release.support.errors import ReleaseError


class KeyFileError(ReleaseError):
    """A key file or value that is not an Ed25519 key."""


class SignatureError(ReleaseError):
    """An envelope that does not verify; the message says why."""


@dataclass(frozen=True)
class KeyPair:
    private_pem: bytes
    public_pem: bytes
    key_id: str


def generate_key_pair() -> KeyPair:
    signer = CryptoSigner.generate_ed25519()
    return KeyPair(signer.private_bytes, public_pem(signer.public_key), signer.public_key.keyid)


def public_pem(key: Key) -> bytes:
    raw = bytes.fromhex(key.keyval["public"])
    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )


def load_signer(private_pem: bytes, where: str) -> CryptoSigner:
    try:
        private_key = load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{where} is not an unencrypted PEM private key ({error})") from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyFileError(f"{where} is not an Ed25519 key")
    return CryptoSigner(private_key)


def load_public_key(pem: bytes, where: str) -> SSlibKey:
    try:
        public_key = load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise KeyFileError(f"{where} is not a PEM public key ({error})") from None
    if not isinstance(public_key, Ed25519PublicKey):
        raise KeyFileError(f"{where} is not an Ed25519 key")
    return SSlibKey.from_crypto(public_key)


def sign(payload: bytes, payload_type: str, signer: CryptoSigner) -> bytes:
    """The DSSE envelope of `payload`, signed by `signer`, as JSON."""
    envelope = Envelope(payload, payload_type, {})
    envelope.sign(signer)
    return json.dumps(envelope.to_dict(), indent=2, sort_keys=True).encode("utf-8")


def open_envelope(document: bytes, payload_type: str) -> Envelope:
    """The DSSE envelope in `document`, not yet verified."""
    try:
        envelope = Envelope.from_dict(json.loads(document))
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        raise SignatureError("it is not a DSSE envelope (plain or hand-edited JSON?)") from None
    if envelope.payload_type != payload_type:
        raise SignatureError(f"its payload type is {envelope.payload_type!r}, not {payload_type!r}")
    return envelope


def verify(envelope: Envelope, trusted: dict[str, Key], untrusted_because: str) -> str:
    """The id of the trusted key that signed `envelope`. SignatureError says whether it is
    unsigned, signed by a key not trusted (`untrusted_because` completes that sentence), or
    altered."""
    if not envelope.signatures:
        raise SignatureError("it is unsigned")
    known = [key_id for key_id in envelope.signatures if key_id in trusted]
    if not known:
        signers = ", ".join(key_id[:16] for key_id in envelope.signatures)
        raise SignatureError(f"it is signed by key {signers}, {untrusted_because}")
    try:
        accepted = envelope.verify([trusted[key_id] for key_id in known], 1)
    except VerificationError:
        raise SignatureError(
            f"its signature by key {known[0][:16]} does not verify: the envelope was altered "
            "after it was signed"
        ) from None
    return next(iter(accepted))


def sign_detached(payload: bytes, payload_type: str, signer: CryptoSigner) -> list[dict]:
    """DSSE signatures over `payload` (its pre-authentication encoding with the type), to
    keep beside a payload stored as readable JSON rather than base64."""
    envelope = Envelope(payload, payload_type, {})
    envelope.sign(signer)
    return [signature.to_dict() for signature in envelope.signatures.values()]


def verify_detached(
    payload: bytes,
    payload_type: str,
    signatures: object,
    trusted: dict[str, Key],
    untrusted_because: str,
) -> str:
    """verify() for signatures kept beside their payload (sign_detached)."""
    try:
        found = [Signature.from_dict(dict(item)) for item in signatures]  # type: ignore[attr-defined]
    except (TypeError, ValueError, KeyError, AttributeError):
        raise SignatureError("its signatures are not DSSE signatures") from None
    envelope = Envelope(payload, payload_type, {item.keyid: item for item in found})
    return verify(envelope, trusted, untrusted_because)
