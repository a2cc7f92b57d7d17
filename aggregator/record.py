"""The public record of a protocol round, stored on IPFS and named in the new model's metadata.

The chain holds commitments, weights, reputations, contributions and removals; this record holds
everything else an auditor needs to re-check a round without the sealed updates: the weighted sum
S = Σ W_i q_i and the blinding that open the model's Pedersen commitment, the rule statement the
Groth16 digest hashes, the clip factors and cosines behind the reputations, the Shapley
coalition utilities behind the contributions, and (rule version rffl-v2) the Σ-proof linking the
Pedersen-committed updates to the ones the Groth16 proof ran the rules on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from zk.curve import CURVE_ORDER
from zk.groth16.rules import RoundStatement

RECORD_FORMAT = "fedmarket-round-record"
RECORD_VERSION = 1
RECORD_KEY = "round_record"  # model metadata key holding the record's CID
MAX_RECORD_BYTES = 64 << 20
CONTRIBUTION_SCALE = 10**9  # Shapley value (accuracy units) → int128 on chain


@dataclass
class RoundRecord:
    task_id: int
    round: int
    previous_model_cid: str
    participants: list[str]
    scale_bits: int
    value_bits: int
    generator_tag: str
    weighted_sum: list[int]
    denominator: int
    model_blinding: int
    model_salt: int
    weights: list[int]
    poseidons: list[int]
    model_poseidon: int
    gamma_q: int
    alpha_fp: int
    beta: str
    base_weights: list[int]
    reputations_before: list[int]
    reputations_after: list[int]
    flags: list[int]  # submitted + 2·kept + 4·active + 8·removed (the circuit's encoding)
    clip_factors: list[int]
    phis: list[int]
    removals: int
    contributions: list[int]
    shapley_players: list[int]
    shapley_seed: int
    shapley_method: str
    shapley_utilities: dict[str, float]
    shapley_values: list[float]
    rejected: list[dict[str, str]] = field(default_factory=list)
    proof_mode: str = "pedersen"
    proof_label: str = ""
    # rule version rffl-v2 (empty for other proofs): the cosine filter's τ (fixed point, in the digest) and the
    # Poseidon <-> Pedersen link: {"digest", "seed", "t" (decimal strings), "proof": LinkProof.to_json()}. The
    # auditor re-derives seed and t from the chain (commitments, model commitment, the proof's digest and t).
    rule_version: str = ""
    filter_threshold: int = 0
    norm_ratio_sq: int = 0  # rule version rffl-v3: the norm filter's K = ⌊k²·ONE⌋ (in the digest)
    link: dict[str, Any] = field(default_factory=dict)

    def statement(self, reputations_before: list[int] | None = None) -> RoundStatement:
        """The rule statement the Groth16 digest hashes, from this record; an auditor passes the reputations
        before the round as read from the chain instead of the record's own."""
        before = self.reputations_before if reputations_before is None else reputations_before
        return RoundStatement(
            self.weights, self.poseidons, self.model_poseidon, self.gamma_q, self.alpha_fp, Fraction(self.beta),
            self.base_weights, before, self.reputations_after, self.flags,
        )  # fmt: skip

    def to_json(self) -> bytes:
        return json.dumps({"format": RECORD_FORMAT, "version": RECORD_VERSION, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RoundRecord:
        document = json.loads(data)
        if document.pop("format", None) != RECORD_FORMAT or document.pop("version", None) != RECORD_VERSION:
            raise ValueError("not a fedmarket round record (version 1)")
        return cls(**document)

    @property
    def beta_fraction(self) -> Fraction:
        return Fraction(self.beta)


def apply_aggregate(theta: np.ndarray, aggregate: np.ndarray, scale_bits: int) -> np.ndarray:
    """θ + ū·2^-scale_bits in float64, stored as float32: the one definition aggregator and auditor share."""
    return (theta.astype(np.float64) + aggregate.astype(np.float64) / float(1 << scale_bits)).astype(np.float32)


def chain_seed(task_id: int, round_: int, previous_model_cid: str) -> int:
    """The Shapley seed: from public chain data only, so anyone recomputes it."""
    digest = hashlib.sha256(f"fedmarket/shapley/{task_id}/{round_}/{previous_model_cid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**31)


def model_salt(task_id: int, round_: int, previous_model_cid: str) -> int:
    """The model's Poseidon salt: published in the record, so derived rather than random (reruns agree)."""
    digest = hashlib.sha256(f"fedmarket/model-salt/{task_id}/{round_}/{previous_model_cid}".encode()).digest()
    return int.from_bytes(digest, "big") % CURVE_ORDER


def contributions_from_shapley(n: int, players: list[int], values: list[float], fallback: list[int]) -> list[int]:
    """max(φ_i, 0)·CONTRIBUTION_SCALE for players, 0 for everyone else; if no player has a positive value,
    the players' reputations instead (the round's reward then follows RFFL rather than going back unearned)."""
    out = [0] * n
    for i, v in zip(players, values, strict=True):
        out[i] = max(0, round(v * CONTRIBUTION_SCALE))
    if players and not any(out):
        for i in players:
            out[i] = int(fallback[i])
    return out
