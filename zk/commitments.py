"""Commitments recorded on chain next to an update's CID.

The hash commitment binds the plaintext update: after decrypting, the aggregator (and any
auditor given the plaintext) checks it against the chain, so a sender cannot later claim
different content and IPFS cannot substitute bytes.
"""

from __future__ import annotations

import hashlib
import hmac

from marketplace.errors import CommitmentMismatchError

HASH_COMMITMENT_BYTES = 32


def hash_commitment(data: bytes) -> bytes:
    """SHA-256 of the plaintext update: 32 bytes, stored as a bytes32 on chain."""
    return hashlib.sha256(data).digest()


def check_hash_commitment(data: bytes, commitment: bytes) -> None:
    """Raise CommitmentMismatchError unless `data` hashes to `commitment`."""
    if len(commitment) != HASH_COMMITMENT_BYTES:
        raise CommitmentMismatchError(f"hash commitment must be {HASH_COMMITMENT_BYTES} bytes, got {len(commitment)}")
    actual = hash_commitment(data)
    if not hmac.compare_digest(actual, bytes(commitment)):
        raise CommitmentMismatchError(
            f"content hashes to 0x{actual.hex()}, but the chain records 0x{bytes(commitment).hex()}",
            hint="the update was altered or is not the one committed on chain",
        )
