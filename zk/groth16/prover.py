"""Prove and verify one round's rules; the proof travels as `RoundProof.to_bytes()` in verifyRound's `proof`.

groth16py returns a 256-byte proof even for an unsatisfied witness (DESIGN.md §4), so `prove`
always verifies before returning and raises instead of handing out a useless proof.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import groth16py

from zk.groth16.backend import prove_inputs
from zk.groth16.keys import CircuitKeys
from zk.groth16.rules import RoundInputs, RoundStatement, Witness, build_witness, public_hash

PROOF_BYTES = 256
#: What RulesRoundVerifier.verifyRound decodes: abi.encode(uint256[8] proof, uint256 digest).
ROUND_PROOF_BYTES = PROOF_BYTES + 32


class ProofRejected(RuntimeError):
    """The prover produced a proof its own verifying key rejects (the witness broke a rule)."""


def check_proof_bytes(proof: bytes) -> None:
    """A Groth16 proof is a, b, c as eight 32-byte words; anything else is refused."""
    if len(proof) != PROOF_BYTES:
        raise ValueError(f"a Groth16 proof is {PROOF_BYTES} bytes, got {len(proof)}")


def proof_words(proof: bytes) -> list[int]:
    """The eight uint256 words of a proof, as the Solidity verifier takes them."""
    return [int.from_bytes(proof[i : i + 32], "big") for i in range(0, PROOF_BYTES, 32)]


@dataclass(frozen=True)
class RoundProof:
    """A Groth16 proof (a, b, c as eight 32-byte words) plus the digest the chain needs to rebuild h."""

    proof: bytes
    digest: int
    label: str  # where the key came from; UNSAFE for single-party setups

    def __post_init__(self) -> None:
        check_proof_bytes(self.proof)

    def words(self) -> list[int]:
        return proof_words(self.proof)

    def to_bytes(self) -> bytes:
        """abi.encode(uint256[8] proof, uint256 digest): what RulesRoundVerifier.verifyRound decodes."""
        return self.proof + int(self.digest).to_bytes(32, "big")

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "") -> RoundProof:
        if len(data) != ROUND_PROOF_BYTES:
            raise ValueError(f"round proof bytes must be {ROUND_PROOF_BYTES} long, got {len(data)}")
        return cls(bytes(data[:PROOF_BYTES]), int.from_bytes(data[PROOF_BYTES:], "big"), label)


@dataclass(frozen=True)
class ProveResult:
    proof: RoundProof
    witness: Witness
    seconds: float


def prove_round(keys: CircuitKeys, rnd: RoundInputs) -> ProveResult:
    """Witness → proof → self-check; raises ProofRejected rather than return an invalid proof."""
    witness = build_witness(keys.shape, rnd)
    digest, weights = witness.statement.digest, witness.statement.weights

    def accept(raw: bytes) -> bool:
        return verify_round(keys, RoundProof(raw, digest, keys.label), weights)

    start = time.perf_counter()
    raw = prove_inputs(keys.pk, keys.directory, witness.inputs, accept)
    seconds = time.perf_counter() - start
    proof = RoundProof(raw, digest, keys.label)
    if not verify_round(keys, proof, witness.statement.weights):
        raise ProofRejected("the proof does not verify under its own key: the witness violates the circuit")
    return ProveResult(proof, witness, seconds)


def verify_round(keys: CircuitKeys, proof: RoundProof, weights: list[int]) -> bool:
    """groth16py's check of a proof against the posted weights and digest (fast path, same library as the prover).

    Malformed encodings (points off the curve, digest outside F_r) count as rejection.
    """
    try:
        return bool(groth16py.Verifier(keys.vk).verify(proof.proof, [public_hash(weights, proof.digest)]))
    except (groth16py.EncodingError, groth16py.VerificationError, ValueError, OverflowError):
        return False


def verify_statement(keys: CircuitKeys, proof: RoundProof, statement: RoundStatement) -> bool:
    """As verify_round, and the digest must be the one recomputed from the full statement."""
    return proof.digest == statement.digest and verify_round(keys, proof, statement.weights)
