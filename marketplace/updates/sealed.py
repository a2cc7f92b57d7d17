"""Sealed boxes (X25519 + XSalsa20-Poly1305): only the aggregator can read an update.

Updates sit on public IPFS; in the clear they would leak training data through gradient
inversion and let free-riders copy others' work. A sealed box needs only the recipient's
public key (published in the task spec) and reveals nothing about the sender.
"""

from __future__ import annotations

import base64
import binascii

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from marketplace.errors import DecryptionError, FedmarketError

KEY_BYTES = 32
SEAL_OVERHEAD_BYTES = 48  # ephemeral public key (32) + authentication tag (16)


def generate_keypair() -> tuple[bytes, bytes]:
    """A fresh (private, public) X25519 key pair, 32 bytes each."""
    private = PrivateKey.generate()
    return bytes(private), bytes(private.public_key)


def public_key_from_private(private_key: bytes) -> bytes:
    """The public key that belongs to `private_key`."""
    return bytes(PrivateKey(_check_key(private_key, "private")).public_key)


def seal(plaintext: bytes, public_key: bytes) -> bytes:
    """Encrypt `plaintext` so that only the holder of the matching private key can open it."""
    return SealedBox(PublicKey(_check_key(public_key, "public"))).encrypt(bytes(plaintext))


def open_sealed(ciphertext: bytes, private_key: bytes) -> bytes:
    """Decrypt a sealed box; a wrong key, truncation or tampering raises DecryptionError."""
    if len(private_key) != KEY_BYTES:
        raise DecryptionError(f"private key must be {KEY_BYTES} bytes, got {len(private_key)}")
    try:
        return SealedBox(PrivateKey(bytes(private_key))).decrypt(bytes(ciphertext))
    except CryptoError as exc:
        raise DecryptionError(
            "cannot open sealed update: wrong key, or the ciphertext was truncated or altered",
            hint="check that the update was sealed to this aggregator's public key",
        ) from exc


def key_to_hex(key: bytes) -> str:
    """0x-prefixed lowercase hex, as written in task specs."""
    return "0x" + _check_key(key, "X25519").hex()


def key_from_hex(text: str) -> bytes:
    """Parse a 32-byte key from hex, with or without the 0x prefix."""
    digits = text[2:] if text.lower().startswith("0x") else text
    try:
        key = bytes.fromhex(digits)
    except ValueError as exc:
        raise FedmarketError(f"key is not valid hex: {text[:20]!r}...") from exc
    return _check_key(key, "X25519")


def key_to_base64(key: bytes) -> str:
    return base64.b64encode(_check_key(key, "X25519")).decode("ascii")


def key_from_base64(text: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FedmarketError(f"key is not valid base64: {text[:20]!r}...") from exc
    return _check_key(key, "X25519")


def _check_key(key: bytes, role: str) -> bytes:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes | bytearray) else type(key).__name__
        raise FedmarketError(f"{role} key must be {KEY_BYTES} bytes, got {size}")
    return bytes(key)
