"""Hash commitments bind decrypted content to what the chain records."""

from __future__ import annotations

import hashlib

import pytest

from marketplace.errors import CommitmentMismatchError
from zk.commitments import check_hash_commitment, hash_commitment


def test_hash_commitment_is_sha256_of_the_plaintext() -> None:
    assert hash_commitment(b"update") == hashlib.sha256(b"update").digest()
    assert len(hash_commitment(b"")) == 32


def test_matching_content_passes() -> None:
    check_hash_commitment(b"update bytes", hash_commitment(b"update bytes"))


def test_altered_content_is_refused() -> None:
    with pytest.raises(CommitmentMismatchError, match=r"chain records"):
        check_hash_commitment(b"update bytez", hash_commitment(b"update bytes"))


def test_malformed_commitment_is_refused() -> None:
    with pytest.raises(CommitmentMismatchError, match=r"32 bytes"):
        check_hash_commitment(b"x", b"\x00" * 20)
