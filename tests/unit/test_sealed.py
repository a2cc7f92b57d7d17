"""Sealed boxes: only the aggregator's key opens an update."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.errors import DecryptionError, FedmarketError
from marketplace.updates import (
    SEAL_OVERHEAD_BYTES,
    generate_keypair,
    key_from_base64,
    key_from_hex,
    key_to_base64,
    key_to_hex,
    open_sealed,
    public_key_from_private,
    seal,
)

PRIVATE, PUBLIC = generate_keypair()


def test_keypair_sizes_and_derivation() -> None:
    assert len(PRIVATE) == len(PUBLIC) == 32
    assert public_key_from_private(PRIVATE) == PUBLIC


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=2048))
def test_seal_open_round_trip(plaintext: bytes) -> None:
    box = seal(plaintext, PUBLIC)
    assert len(box) == len(plaintext) + SEAL_OVERHEAD_BYTES
    assert open_sealed(box, PRIVATE) == plaintext


def test_sealing_is_randomised() -> None:
    assert seal(b"same", PUBLIC) != seal(b"same", PUBLIC)


def test_wrong_key_raises_decryption_error() -> None:
    other_private, _ = generate_keypair()
    with pytest.raises(DecryptionError, match=r"cannot open sealed update"):
        open_sealed(seal(b"secret update", PUBLIC), other_private)


def test_tampered_or_truncated_ciphertext_raises_decryption_error() -> None:
    box = bytearray(seal(b"secret update", PUBLIC))
    box[-1] ^= 1
    with pytest.raises(DecryptionError):
        open_sealed(bytes(box), PRIVATE)
    with pytest.raises(DecryptionError):
        open_sealed(bytes(box[:20]), PRIVATE)


def test_malformed_private_key_raises_decryption_error() -> None:
    with pytest.raises(DecryptionError, match=r"32 bytes"):
        open_sealed(seal(b"x", PUBLIC), b"short")


def test_malformed_public_key_is_refused() -> None:
    with pytest.raises(FedmarketError, match=r"32 bytes"):
        seal(b"x", b"\x01" * 31)


def test_key_text_encodings_round_trip() -> None:
    assert key_from_hex(key_to_hex(PUBLIC)) == PUBLIC
    assert key_to_hex(PUBLIC).startswith("0x")
    assert key_from_hex(PUBLIC.hex()) == PUBLIC
    assert key_from_base64(key_to_base64(PUBLIC)) == PUBLIC


@pytest.mark.parametrize("text", ["0xzz", "0x" + "ab" * 31])
def test_bad_hex_keys_are_refused(text: str) -> None:
    with pytest.raises(FedmarketError):
        key_from_hex(text)


def test_bad_base64_key_is_refused() -> None:
    with pytest.raises(FedmarketError):
        key_from_base64("not base64!")
