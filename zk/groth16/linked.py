"""Rule version rffl-v2: the rffl-v1 rules, plus (a) the cosine filter that decides the `kept` flags, proven
in-circuit, and (b) a proof that each owner's Poseidon and Pedersen commitments hold the same vector (the
Poseidon ↔ Pedersen link).

(a) The filter: kept_i = active_i ∧ submitted_i ∧ trunc(ONE·cos(q_i, ref)) ≥ τ, with
ref = ⌊Σ f_i q_i / Σ f_i⌋ and f_i = base_i for active rows that submitted (aggregator.fixedpoint.cosine_filter
with those weights; τ is a task parameter in [−ONE, ONE], in the digest). τ = −ONE keeps every live row.

Why a link is needed: layer 1 (Pedersen, checked on chain) binds Σ_i W_i·u_i, layer 2 (Groth16 over Poseidon
commitments) binds the q_i the rules ran on. Without a link, an owner colluding with the aggregator could show
the circuit one vector and the aggregation another.

The link is a random evaluation, with the challenge fixed by the chain after every commitment exists:

1. seed s = keccak256(abi.encode(C_1..C_n, C_model, digest)) mod r (points as uint256[2]), where the
   C_i are the owners' Pedersen commitments, C_model the model commitment and `digest` the Poseidon digest of
   the statement (which contains every Poseidon commitment). LinkedRulesRoundVerifier computes it itself.
2. The circuit (fedmarket_rules_v2.circom) evaluates, over the q_i it ran the rules on,
       t = Σ_{i submitted} e_i·⟨z, q_i⟩,   z_j = s^(j+1),  e_i = s^(d·i)      (in F_r)
   and t enters the public input: sha256(W ‖ digest ‖ s ‖ t) >> 3.
3. With V = Σ_{i submitted} e_i·C_i = Com(v, ρ_V), v = Σ e_i·u_i (the Pedersen-side vectors), the aggregator
   proves ⟨z, v⟩ = t for the vector committed in V: a Σ-protocol for a linear relation on a Pedersen vector
   commitment (Cramer & Damgård 1998; Maurer, AFRICACRYPT 2009), made non-interactive with Fiat–Shamir:
       A = Com(k, r_k), a = ⟨z, k⟩, c = H(s, t, V, A, a), σ = k + c·v, σ_ρ = r_k + c·ρ_V
   verified by Com(σ, σ_ρ) = A + c·V and ⟨z, σ⟩ = a + c·t. σ is uniform (k is), so it reveals nothing about
   the updates; it has d field elements (published on IPFS with the round), and checking it is one d-point
   MSM (milliseconds with mcl; `verify_link_py_ecc` uses an independent library for auditors).

Rule version rffl-v3 (fedmarket_rules_v3.circom, same public input and adapter) adds to (a) the norm-ratio filter
of aggregator.fixedpoint.norm_ratio_filter (K = ⌊k²·ONE⌋, in the digest after τ) and scores the rows the filters
drop min(φ, 0) (fixedpoint.rffl_round, capped); `LinkedRule` names which rules a proof carries. Rule version
rffl-v4 (fedmarket_rules_v4.circom, the same again) proves a missing score M ∈ [−1, 0] in place of rffl-v3's 0:
an active owner that sent nothing valid scores M, a dropped row min(φ, M), and −M·ONE ends the digest.

Soundness, briefly: Groth16 binds t to the q_i behind the Poseidon commitments; the Σ-protocol's special
soundness plus Pedersen binding (discrete log) bind t to the u_i behind the C_i. If q_i ≠ u_i for some
submitted i, then Σ_{i,j} s^(d·i+j+1)·(q_ij − u_ij) is a non-zero polynomial of degree ≤ n·d in s, and s is a
random-oracle output over all commitments, so equality holds with probability ≤ n·d/r < 2^-230 per query.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import groth16py
import numpy as np
from eth_abi import encode
from eth_utils import keccak

from aggregator import fixedpoint
from aggregator.fixedpoint import ONE
from marketplace.task_spec import CAPPED_VERSIONS
from zk.curve import CURVE_ORDER, INFINITY, Point
from zk.generators import DEFAULT_TAG
from zk.groth16.backend import prove_inputs
from zk.groth16.keys import RULES_V2, RULES_V3, RULES_V4, CircuitKeys, CircuitSpec
from zk.groth16.poseidon import chain_hash
from zk.groth16.prover import PROOF_BYTES, ProofRejected, check_proof_bytes, proof_words
from zk.groth16.rules import CircuitShape, RoundInputs, RoundStatement, RuleMismatch, Witness, build_witness

RULE_VERSION = "rffl-v2"
#: Heads of the digest chains (also in the circuits): statements of different rule versions never collide.
SPECS: dict[str, CircuitSpec] = {"rffl-v2": RULES_V2, "rffl-v3": RULES_V3, "rffl-v4": RULES_V4}
RULE_TAGS = {version: int.from_bytes(f"fedmarket/{version}".encode(), "big") for version in SPECS}
#: K = ⌊k²·ONE⌋ must fit the circuit's range check (k ≤ 64).
NORM_RATIO_BITS = fixedpoint.FRAC_BITS + 13
_LINK_DOMAIN = b"fedmarket/link-sigma/v1"
_NONCE_DOMAIN = b"fedmarket/link-sigma/nonce/v1"


@dataclass(frozen=True)
class LinkedRule:
    """The rules a linked proof carries beyond rffl-v1: rffl-v2's cosine filter τ (fixed point); rffl-v3 adds the
    norm-ratio filter K = ⌊k²·ONE⌋ (0: off) and capped scores for the rows the filters drop; rffl-v4 the missing
    score M (fixed point, in [−ONE, 0]) that a silent owner scores and caps a dropped row (rffl-v3: 0)."""

    version: str = RULE_VERSION
    threshold: int = -ONE
    norm_ratio_sq: int = 0
    missing_fp: int = 0

    def __post_init__(self) -> None:
        if self.version not in SPECS:
            raise ValueError(f"unknown linked rule version {self.version!r}; known: {', '.join(SPECS)}")
        if not -ONE <= int(self.threshold) <= ONE:
            raise ValueError("filter_threshold must lie in [-ONE, ONE]")
        if self.version == "rffl-v2" and self.norm_ratio_sq:
            raise ValueError("rffl-v2 has no norm-ratio filter")
        if not 0 <= int(self.norm_ratio_sq) < 1 << NORM_RATIO_BITS:
            raise ValueError(f"norm_ratio_sq must lie in [0, 2^{NORM_RATIO_BITS})")
        if not -ONE <= int(self.missing_fp) <= 0:
            raise ValueError("missing_fp must lie in [-ONE, 0]")
        if self.version != "rffl-v4" and self.missing_fp:
            raise ValueError(f"{self.version} proves a missing score of 0; rffl-v4 proves others")

    @property
    def capped(self) -> bool:
        return self.version in CAPPED_VERSIONS

    @property
    def spec(self) -> CircuitSpec:
        return SPECS[self.version]

    def digest_tail(self) -> list[int]:
        """What the version appends to rffl-v1's digest inputs: τ (mod r), then (rffl-v3, rffl-v4) K, then
        (rffl-v4) −M."""
        tail = [int(self.threshold) % CURVE_ORDER]
        if self.capped:
            tail.append(int(self.norm_ratio_sq))
        return [*tail, -int(self.missing_fp)] if self.version == "rffl-v4" else tail


def as_rule(rule: LinkedRule | int) -> LinkedRule:
    """A bare threshold is an rffl-v2 rule (the original linked version)."""
    return rule if isinstance(rule, LinkedRule) else LinkedRule(RULE_VERSION, int(rule))


def statement_digest(statement: RoundStatement, rule: LinkedRule | int) -> int:
    """A linked digest: rffl-v1's digest inputs, then the version's tail, under the version's tag."""
    rule = as_rule(rule)
    return chain_hash(RULE_TAGS[rule.version], [*statement.digest_inputs(), *rule.digest_tail()])


def _live(rnd: RoundInputs) -> list[bool]:
    """Rows that are active and submitted: the ones the filters judge."""
    return [bool(a and s) for a, s in zip(rnd.active, rnd.submitted, strict=True)]


def filter_weights(rnd: RoundInputs) -> list[int]:
    """f_i = base_i for active rows that submitted, else 0: the reference weights of the cosine filter."""
    return [int(b) if ok else 0 for b, ok in zip(rnd.base_weights, _live(rnd), strict=True)]


def filter_decision(rnd: RoundInputs, rule: LinkedRule | int) -> list[bool]:
    """kept_i: active, submitted and fixedpoint.filtered_rows keeps row i (the cosine filter at τ; under rffl-v3
    and rffl-v4 also the norm-ratio filter at K, which rffl-v2 rules hold at 0)."""
    rule = as_rule(rule)
    q = np.asarray(rnd.q).astype(np.int64)
    return fixedpoint.filtered_rows(q, _live(rnd), rnd.base_weights, rule.threshold, rule.norm_ratio_sq)


def _median_hints(rnd: RoundInputs, rule: LinkedRule) -> dict[str, Any]:
    """The norm filter of rffl-v3 and rffl-v4: K, a one-hot pick of the live row holding the lower median |q|², and
    h, b with 2h + b = m − 1 (m live rows; h = b = 0 when m = 0)."""
    sq = fixedpoint.exact_squared_norms(np.asarray(rnd.q).astype(np.int64))
    live = _live(rnd)
    median = fixedpoint.lower_median([v for v, ok in zip(sq, live, strict=True) if ok])
    pick = next((i for i, (v, ok) in enumerate(zip(sq, live, strict=True)) if ok and v == median), None)
    m = sum(live)
    return {
        "normK": int(rule.norm_ratio_sq),
        "medSel": [int(i == pick) for i in range(len(sq))],
        "medHalf": max(m - 1, 0) // 2,
        "medOdd": max(m - 1, 0) % 2,
    }


def _filter_hints(rnd: RoundInputs, filter_threshold: int) -> dict[str, Any]:
    """Hints for the in-circuit filter: ref = ⌊Σ f q / Σ f⌋ (quotient, remainder) and each cosine's root."""
    q = np.asarray(rnd.q).astype(np.int64)
    rows = [[int(x) for x in row] for row in q.tolist()]
    f = filter_weights(rnd)
    den = sum(f) or 1
    numer = [sum(fi * row[j] for fi, row in zip(f, rows, strict=True)) for j in range(q.shape[1])]
    ref = [x // den for x in numer]
    if ref != [int(x) for x in fixedpoint.weighted_mean(q, f).tolist()]:
        raise RuleMismatch("filter reference")
    sq = fixedpoint.exact_squared_norms(q)
    refsq = sum(x * x for x in ref)
    fc_t, fc_rem, fc_s = [], [], []
    for i, row in enumerate(rows):
        dot = sum(a * b for a, b in zip(row, ref, strict=True))
        cden = sq[i] * refsq or 1
        cnum = ONE * ONE * dot * dot
        fc_t.append(cnum // cden)
        fc_rem.append(cnum % cden)
        fc_s.append(math.isqrt(fc_t[-1]))
    return {
        "filterT": int(filter_threshold) % CURVE_ORDER,
        "refQ": [x % CURVE_ORDER for x in ref],
        "refRem": [x % den for x in numer],
        "fcT": fc_t,
        "fcRem": fc_rem,
        "fcS": fc_s,
    }


def link_seed(commitments: Sequence[Point], model_commitment: Point, digest: int) -> int:
    """keccak256(abi.encode(uint256[2][] C, uint256[2] C_model, digest)) mod r, as the contract computes it."""
    data = encode(
        ["uint256[2][]", "uint256[2]", "uint256"],
        [
            [[int(c[0]), int(c[1])] for c in commitments],
            [int(model_commitment[0]), int(model_commitment[1])],
            int(digest),
        ],
    )
    return int.from_bytes(keccak(data), "big") % CURVE_ORDER


def challenge_vectors(seed: int, n: int, d: int, submitted: Sequence[bool]) -> tuple[list[int], list[int]]:
    """(e, z): e_i = s^(d·i) for submitted rows (0 otherwise), z_j = s^(j+1)."""
    z, acc = [], 1
    for _ in range(d):
        acc = acc * seed % CURVE_ORDER
        z.append(acc)
    step = pow(seed, d, CURVE_ORDER)
    e = [pow(step, i, CURVE_ORDER) if submitted[i] else 0 for i in range(n)]
    return e, z


def link_value(q: np.ndarray | Sequence[Sequence[int]], submitted: Sequence[bool], seed: int) -> int:
    """t = Σ_i e_i·⟨z, q_i⟩ mod r, exactly what the circuit computes."""
    rows = [[int(x) for x in row] for row in np.asarray(q).tolist()]
    e, z = challenge_vectors(seed, len(rows), len(rows[0]) if rows else 0, submitted)
    return sum(ei * sum(zj * x for zj, x in zip(z, row, strict=True)) for ei, row in zip(e, rows, strict=True)) % (
        CURVE_ORDER
    )


def public_hash_v2(weights: Sequence[int], digest: int, seed: int, t: int) -> int:
    """sha256(uint32be(W_i)… ‖ digest ‖ seed ‖ t) >> 3 (LinkedRulesRoundVerifier.publicInput)."""
    message = b"".join(int(w).to_bytes(4, "big") for w in weights)
    message += b"".join(int(x).to_bytes(32, "big") for x in (digest, seed, t))
    return int.from_bytes(hashlib.sha256(message).digest(), "big") >> 3


# ---------------------------------------------------------------- the Pedersen side: Σ-protocol


@dataclass(frozen=True)
class LinkProof:
    """Fiat–Shamir Σ-proof that V = Σ e_i C_i commits to a vector v with ⟨z, v⟩ = t."""

    a_point: Point
    a_value: int
    sigma: list[int]
    sigma_blinding: int

    def to_json(self) -> dict[str, Any]:
        return {
            "A": [str(self.a_point[0]), str(self.a_point[1])],
            "a": str(self.a_value),
            "sigma": [str(x) for x in self.sigma],
            "sigma_blinding": str(self.sigma_blinding),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkProof:
        return cls(
            (int(data["A"][0]), int(data["A"][1])),
            int(data["a"]),
            [int(x) for x in data["sigma"]],
            int(data["sigma_blinding"]),
        )


def _fs_challenge(seed: int, t: int, v_point: Point, a_point: Point, a_value: int) -> int:
    words = [seed, t, int(v_point[0]), int(v_point[1]), int(a_point[0]), int(a_point[1]), a_value]
    data = _LINK_DOMAIN + b"".join(int(w).to_bytes(32, "big") for w in words)
    return int.from_bytes(hashlib.sha256(data).digest(), "big") % CURVE_ORDER


def combine_rows(updates: Sequence[np.ndarray], e: Sequence[int]) -> list[int]:
    """v = Σ_i e_i·u_i mod r, coordinate-wise (exact Python integers)."""
    d = len(np.asarray(updates[0]).reshape(-1))
    v = [0] * d
    for ei, u in zip(e, updates, strict=True):
        if ei:
            row = np.asarray(u).reshape(-1).tolist()
            v = [acc + ei * int(x) for acc, x in zip(v, row, strict=True)]
    return [x % CURVE_ORDER for x in v]


def combined_commitment(commitments: Sequence[Point], e: Sequence[int]) -> Point:
    """V = Σ e_i·C_i (mcl)."""
    from zk.pedersen import aggregate_commitment

    return aggregate_commitment(commitments, list(e))


def pedersen_challenges(
    seed: int, n: int, d: int, submitted: Sequence[bool], projection: np.ndarray | None = None
) -> tuple[list[int], list[int]]:
    """(e, z') for the Pedersen side: z' = z, or Pᵀ·z (mod r) when the circuit ran on projections y_i = P·u_i
    (zk/groth16/projection.py); then ⟨z, y_i⟩ = ⟨Pᵀz, u_i⟩ and the same Σ-proof links y_i to C_i."""
    if projection is None:
        return challenge_vectors(seed, n, d, submitted)
    m = projection.shape[0]
    e, z = challenge_vectors(seed, n, m, submitted)
    from zk.groth16.projection import transpose_times

    return e, transpose_times(projection, z)


def prove_link(
    updates: Sequence[np.ndarray],
    blindings: Sequence[int],
    commitments: Sequence[Point],
    submitted: Sequence[bool],
    seed: int,
    t: int,
    *,
    projection: np.ndarray | None = None,
    tag: str = DEFAULT_TAG,
    deterministic: bool = False,
) -> LinkProof:
    """The aggregator's Σ-proof from the Pedersen openings (u_i, ρ_i). Raises ValueError on a mismatch.

    With `projection` P (m × d), t is the circuit's evaluation over y_i = P·u_i. `tag`: the generators of the
    commitments (the task's generator tag). `deterministic`: derive the nonces (k, r_k) from the secret ρ_V, v and
    the statement (as RFC 6979 does for ECDSA) instead of fresh randomness, so reruns give the same proof; another
    statement or other openings give other nonces, so no nonce is ever reused with a different challenge.
    """
    from zk.pedersen import commit

    n, d = len(updates), len(np.asarray(updates[0]).reshape(-1))
    e, z = pedersen_challenges(seed, n, d, submitted, projection)
    v = combine_rows(updates, e)
    if sum(zj * vj for zj, vj in zip(z, v, strict=True)) % CURVE_ORDER != t % CURVE_ORDER:
        raise ValueError("the Pedersen openings do not evaluate to the circuit's t: a commitment pair mismatches")
    rho_v = sum(ei * int(r) for ei, r in zip(e, blindings, strict=True)) % CURVE_ORDER
    v_point = combined_commitment(commitments, e)
    if deterministic:
        k, r_k = _derived_nonces(d, rho_v, v, seed, t, v_point)
    else:
        k = [secrets.randbelow(CURVE_ORDER) for _ in range(d)]
        r_k = secrets.randbelow(CURVE_ORDER)
    a_point = commit(np.array(k, dtype=object), r_k, tag=tag)
    a_value = sum(zj * kj for zj, kj in zip(z, k, strict=True)) % CURVE_ORDER
    c = _fs_challenge(seed, t, v_point, a_point, a_value)
    sigma = [(kj + c * vj) % CURVE_ORDER for kj, vj in zip(k, v, strict=True)]
    return LinkProof(a_point, a_value, sigma, (r_k + c * rho_v) % CURVE_ORDER)


def _derived_nonces(d: int, rho_v: int, v: Sequence[int], seed: int, t: int, v_point: Point) -> tuple[list[int], int]:
    """(k, r_k) = SHA-256 expansions of a key hashed from the secret (ρ_V, v) and the public (s, t, V)."""
    h = hashlib.sha256(_NONCE_DOMAIN)
    for word in (rho_v, *v, seed, t, int(v_point[0]), int(v_point[1])):
        h.update(int(word).to_bytes(32, "big"))
    key = h.digest()

    def draw(index: int) -> int:  # 512 bits reduced mod r: statistically uniform
        block = hashlib.sha256(key + index.to_bytes(8, "big") + b"0").digest()
        block += hashlib.sha256(key + index.to_bytes(8, "big") + b"1").digest()
        return int.from_bytes(block, "big") % CURVE_ORDER

    return [draw(j) for j in range(d)], draw(d)


def _point_sum(a: Point, b: Point) -> Point:
    from zk import mcl

    if a == INFINITY:
        return b
    if b == INFINITY:
        return a
    return mcl.g1_to_affine(mcl.g1_add(mcl.g1_from_affine(a), mcl.g1_from_affine(b)))


def verify_link(
    commitments: Sequence[Point],
    submitted: Sequence[bool],
    seed: int,
    t: int,
    d: int,
    proof: LinkProof,
    *,
    projection: np.ndarray | None = None,
    tag: str = DEFAULT_TAG,
) -> bool:
    """Check a LinkProof with mcl (fast path; zk.auditor_link re-checks it with py_ecc). d: the Pedersen side's
    dimension; `projection` and `tag` as in prove_link."""
    from zk.pedersen import aggregate_commitment, commit

    if len(proof.sigma) != d or any(not 0 <= x < CURVE_ORDER for x in proof.sigma):
        return False
    e, z = pedersen_challenges(seed, len(commitments), d, submitted, projection)
    v_point = combined_commitment(commitments, e)
    c = _fs_challenge(seed, t, v_point, proof.a_point, proof.a_value)
    if sum(zj * sj for zj, sj in zip(z, proof.sigma, strict=True)) % CURVE_ORDER != (proof.a_value + c * t) % (
        CURVE_ORDER
    ):
        return False
    lhs = commit(np.array(proof.sigma, dtype=object), proof.sigma_blinding, tag=tag)
    rhs = _point_sum(proof.a_point, aggregate_commitment([v_point], [c]) if v_point != INFINITY else INFINITY)
    return lhs == rhs


# ---------------------------------------------------------------- the circuit side


@dataclass(frozen=True)
class LinkedStatement:
    """What a linked proof states: the v1 statement (under the version's tag), the chain's seed and the evaluation
    t."""

    statement: RoundStatement
    seed: int
    t: int
    rule: LinkedRule

    @property
    def digest(self) -> int:
        return statement_digest(self.statement, self.rule)

    @property
    def weights(self) -> list[int]:
        return self.statement.weights

    @property
    def public_hash(self) -> int:
        return public_hash_v2(self.statement.weights, self.digest, self.seed, self.t)


@dataclass(frozen=True)
class LinkedWitness:
    inputs: dict[str, Any]
    linked: LinkedStatement
    base: Witness


def build_linked_witness(
    shape: CircuitShape,
    rnd: RoundInputs,
    commitments: Sequence[Point],
    model_commitment: Point,
    rule: LinkedRule | int,
) -> LinkedWitness:
    """rffl-v1's witness (checked against aggregator.fixedpoint), the filter hints, the chain seed and t.

    `rnd.kept` must be the filters' decision (`filter_decision`): the circuit proves it, so any other
    kept vector has no proof.
    """
    rule = as_rule(rule)
    if [bool(k) for k in rnd.kept] != filter_decision(rnd, rule):
        raise RuleMismatch("kept flags are not the filters' decision")
    base = build_witness(shape, rnd, capped=rule.capped, missing_fp=rule.missing_fp)
    if len(commitments) != shape.n:
        raise ValueError("one Pedersen commitment per owner")
    digest = statement_digest(base.statement, rule)
    seed = link_seed(commitments, model_commitment, digest)
    t = link_value(rnd.q, rnd.submitted, seed)
    linked = LinkedStatement(base.statement, seed, t, rule)
    inputs = dict(base.inputs) | _filter_hints(rnd, rule.threshold) | {"publicHash": linked.public_hash, "seed": seed}
    if rule.capped:
        inputs |= _median_hints(rnd, rule)
    if rule.version == "rffl-v4":
        inputs["missingNeg"] = -int(rule.missing_fp)
    return LinkedWitness(inputs, linked, base)


#: What LinkedRulesRoundVerifier.verifyRound decodes: abi.encode(uint256[8] proof, uint256 digest, uint256 t).
LINKED_PROOF_BYTES = PROOF_BYTES + 64


@dataclass(frozen=True)
class LinkedRoundProof:
    """Groth16 proof + digest + t: `to_bytes()` is what LinkedRulesRoundVerifier.verifyRound decodes."""

    proof: bytes
    digest: int
    t: int
    label: str

    def __post_init__(self) -> None:
        check_proof_bytes(self.proof)

    def words(self) -> list[int]:
        return proof_words(self.proof)

    def to_bytes(self) -> bytes:
        """abi.encode(uint256[8] proof, uint256 digest, uint256 t)."""
        return self.proof + int(self.digest).to_bytes(32, "big") + int(self.t).to_bytes(32, "big")

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "") -> LinkedRoundProof:
        if len(data) != LINKED_PROOF_BYTES:
            raise ValueError(f"linked round proof bytes must be {LINKED_PROOF_BYTES} long, got {len(data)}")
        return cls(
            bytes(data[:PROOF_BYTES]),
            int.from_bytes(data[PROOF_BYTES : PROOF_BYTES + 32], "big"),
            int.from_bytes(data[PROOF_BYTES + 32 :], "big"),
            label,
        )


@dataclass(frozen=True)
class LinkedProveResult:
    proof: LinkedRoundProof
    witness: LinkedWitness
    seconds: float


def verify_linked(keys: CircuitKeys, proof: LinkedRoundProof, weights: Sequence[int], seed: int) -> bool:
    """groth16py's check against the posted weights, the proof's digest and t, and the chain's seed."""
    try:
        h = public_hash_v2(weights, proof.digest, seed, proof.t)
        return bool(groth16py.Verifier(keys.vk).verify(proof.proof, [h]))
    except (groth16py.EncodingError, groth16py.VerificationError, ValueError, OverflowError):
        return False


def prove_linked_round(
    keys: CircuitKeys,
    rnd: RoundInputs,
    commitments: Sequence[Point],
    model_commitment: Point,
    rule: LinkedRule | int = -ONE,
) -> LinkedProveResult:
    """Witness → Groth16 proof → self-check (raises ProofRejected rather than return an invalid proof).

    A bare threshold is an rffl-v2 rule; the default −ONE keeps every active row that submitted (no filtering).
    """
    rule = as_rule(rule)
    if keys.spec.version != rule.version:
        raise ValueError(f"keys are for {keys.spec.version}, not {rule.version}")
    witness = build_linked_witness(keys.shape, rnd, commitments, model_commitment, rule)
    ls = witness.linked

    def accept(raw: bytes) -> bool:
        return verify_linked(keys, LinkedRoundProof(raw, ls.digest, ls.t, keys.label), ls.weights, ls.seed)

    start = time.perf_counter()
    raw = prove_inputs(keys.pk, keys.directory, witness.inputs, accept)
    seconds = time.perf_counter() - start
    proof = LinkedRoundProof(raw, ls.digest, ls.t, keys.label)
    if not verify_linked(keys, proof, ls.weights, ls.seed):
        raise ProofRejected("the proof does not verify under its own key: the witness violates the circuit")
    return LinkedProveResult(proof, witness, seconds)
