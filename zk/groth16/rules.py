"""Witness and public statement of the layer-2 circuit (rule version rffl-v1).

`zk/circuits/fedmarket_rules.circom` re-checks one RFFL round of aggregator.fixedpoint
(clip → weights → ū → φ → reputation → removal → renormalise). The circuit does no
division or square root itself: this module computes every quotient, remainder and
integer root (the hints) and the circuit checks them with q·b + r = a, 0 ≤ r < b and
s² ≤ x < (s+1)². The outcome comes from aggregator.fixedpoint.rffl_round (the one
definition of each rule), and `build_witness` refuses to continue if the hints disagree
with it, so the proof and the aggregator's Python agree bit for bit.

Public input (one field element, to keep the verifier near 181k + 6.2k gas, EIP-197):
    h = sha256(W_1 ‖ … ‖ W_n ‖ digest) >> 3
with each weight as a 4-byte big-endian integer and `digest` (32 bytes) the Poseidon
chain hash of everything else the round states (commitments, parameters, reputations,
flags; see `RoundStatement.digest_inputs`). The chain reads the weights from calldata and the
digest from the proof bytes and recomputes h with the sha256 precompile.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from aggregator import fixedpoint
from aggregator.fixedpoint import FRAC_BITS, ONE
from zk.curve import CURVE_ORDER
from zk.groth16.poseidon import chain_hash

RULE_VERSION = "rffl-v1"
#: Head of the digest chain: the rule version's bytes as a big-endian integer (also in the circuit).
RULE_TAG = int.from_bytes(b"fedmarket/rffl-v1", "big")
SLOT_BITS = 40
SLOTS_PER_ELEMENT = 6
BETA_BITS = 16
WEIGHT_BYTES = 4


def _clog2(x: int) -> int:
    return max(0, (x - 1).bit_length())


@dataclass(frozen=True)
class CircuitShape:
    """The circuit family's parameters: n owners, d parameters, |q| < 2^value_bits."""

    n: int
    d: int
    value_bits: int = 16

    def __post_init__(self) -> None:
        if self.n < 1 or self.d < 1:
            raise ValueError("n and d must be positive")
        if not 1 <= self.value_bits <= SLOT_BITS - 1:
            raise ValueError(f"value_bits must be in 1..{SLOT_BITS - 1} so a value fits its {SLOT_BITS}-bit slot")
        if 2 * self.squared_bits + 2 * FRAC_BITS + 6 >= 253:
            raise ValueError("n·d·2^value_bits too large for the cosine check without wrap-around in F_r")

    @property
    def squared_bits(self) -> int:
        """Σ q² and |Σ q·ū| stay below 2^squared_bits."""
        return 2 * self.value_bits + _clog2(self.d)

    @property
    def gamma_bits(self) -> int:
        return (self.squared_bits + 1) // 2

    @property
    def key(self) -> str:
        return f"{RULE_VERSION}-n{self.n}-d{self.d}-vb{self.value_bits}"


def pack(values: Sequence[int] | np.ndarray, value_bits: int) -> list[int]:
    """Slots v + 2^value_bits of 40 bits, six per field element (slot 0 least significant)."""
    offset = 1 << value_bits
    items = [int(v) + offset for v in np.asarray(values).reshape(-1).tolist()]
    if any(not 0 <= v < 2 * offset for v in items):
        raise ValueError(f"a value lies outside [-2^{value_bits}, 2^{value_bits})")
    packed = []
    for start in range(0, len(items), SLOTS_PER_ELEMENT):
        packed.append(sum(v << (SLOT_BITS * s) for s, v in enumerate(items[start : start + SLOTS_PER_ELEMENT])))
    return packed


def commit_update(values: Sequence[int] | np.ndarray, salt: int, value_bits: int) -> int:
    """The Poseidon commitment a data owner posts: chain_hash(salt, pack(values))."""
    return chain_hash(salt, pack(values, value_bits))


def random_salt() -> int:
    """A uniformly random commitment salt in F_r (hiding: Poseidon as a random oracle)."""
    return secrets.randbelow(CURVE_ORDER)


@dataclass(frozen=True)
class RoundStatement:
    """What a proof states publicly (through `digest` and `public_hash`)."""

    weights: list[int]
    commitments: list[int]
    model_commitment: int
    gamma_q: int
    alpha_fp: int
    beta: Fraction
    base_weights: list[int]
    reputations_before: list[int]
    reputations_after: list[int]
    flags: list[int]  # submitted + 2·kept + 4·active + 8·removed

    def digest_inputs(self) -> list[int]:
        body = [*self.commitments, self.model_commitment, self.gamma_q, self.alpha_fp]
        body += [self.beta.numerator, self.beta.denominator]
        for b, r0, r1, f in zip(
            self.base_weights, self.reputations_before, self.reputations_after, self.flags, strict=True
        ):
            body += [b, r0, r1, f]
        return body

    @property
    def digest(self) -> int:
        return chain_hash(RULE_TAG, self.digest_inputs())

    @property
    def removed(self) -> list[bool]:
        return [bool(f & 8) for f in self.flags]

    def message(self) -> bytes:
        """The sha256 preimage: weights as uint32 big-endian, then the digest as uint256."""
        return b"".join(int(w).to_bytes(WEIGHT_BYTES, "big") for w in self.weights) + self.digest.to_bytes(32, "big")

    @property
    def public_hash(self) -> int:
        return public_hash(self.weights, self.digest)


def public_hash(weights: Sequence[int], digest: int) -> int:
    """sha256(W ‖ digest) >> 3: 253 bits, so always below r; the adapter contract computes the same."""
    message = b"".join(int(w).to_bytes(WEIGHT_BYTES, "big") for w in weights) + int(digest).to_bytes(32, "big")
    return int.from_bytes(hashlib.sha256(message).digest(), "big") >> 3


@dataclass(frozen=True)
class RoundInputs:
    """One round as the aggregator sees it (see aggregator.fixedpoint.rffl_round for the meaning)."""

    q: np.ndarray
    submitted: Sequence[bool]
    kept: Sequence[bool]
    active: Sequence[bool]
    base_weights: Sequence[int]
    reputations: Sequence[int]
    gamma_q: int
    alpha_fp: int
    beta: Fraction = Fraction(1, 3)
    salts: Sequence[int] = field(default_factory=list)
    model_salt: int = 0


@dataclass(frozen=True)
class Witness:
    """Circuit inputs (field-encoded) plus the statement and the protocol outcome they prove."""

    inputs: dict[str, Any]
    statement: RoundStatement
    outcome: fixedpoint.FixedRoundOutcome


class RuleMismatch(AssertionError):
    """The hints disagree with aggregator.fixedpoint: a bug, never a proof to publish."""


def _f(value: int) -> int:
    return int(value) % CURVE_ORDER


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise RuleMismatch(what)


def build_witness(shape: CircuitShape, rnd: RoundInputs, capped: bool = False, missing_fp: int = 0) -> Witness:
    """All circuit inputs for one round, checked against aggregator.fixedpoint.rffl_round (`capped`: rffl-v3's
    scores, min(φ, M) for live rows that are not kept; `missing_fp`: M, what an active row that sent nothing
    scores, 0 but under rffl-v4)."""
    q = np.asarray(rnd.q)
    if q.shape != (shape.n, shape.d):
        raise ValueError(f"updates have shape {q.shape}, circuit expects {(shape.n, shape.d)}")
    limit = 1 << shape.value_bits
    if q.size and (int(q.max()) >= limit or int(q.min()) < -limit):
        raise ValueError(f"an update value lies outside [-2^{shape.value_bits}, 2^{shape.value_bits})")
    if not 0 < rnd.gamma_q < (1 << shape.gamma_bits):
        raise ValueError(f"gamma_q must be in (0, 2^{shape.gamma_bits})")
    if not 0 <= rnd.alpha_fp <= ONE:
        raise ValueError("alpha_fp must be in [0, ONE]")
    beta = Fraction(rnd.beta)
    if not (0 <= beta.numerator < 1 << BETA_BITS and 0 < beta.denominator < 1 << BETA_BITS):
        raise ValueError(f"beta's numerator and denominator must fit {BETA_BITS} bits")
    if any(not 0 <= int(x) <= 2 * ONE for x in [*rnd.base_weights, *rnd.reputations]):
        raise ValueError("base weights and reputations must lie in [0, 2·ONE]")
    salts = [int(s) for s in rnd.salts] or [0] * shape.n
    if len(salts) != shape.n:
        raise ValueError("one salt per owner")

    outcome = fixedpoint.rffl_round(
        q.astype(np.int64),
        submitted=rnd.submitted,
        kept=rnd.kept,
        active=rnd.active,
        base_weights=rnd.base_weights,
        reputations=rnd.reputations,
        gamma_q=rnd.gamma_q,
        alpha_fp=rnd.alpha_fp,
        beta=beta,
        capped=capped,
        missing_fp=missing_fp,
    )
    n, rows = shape.n, [[int(x) for x in row] for row in q.tolist()]
    sub = [int(bool(x)) for x in rnd.submitted]
    kept = [int(bool(x)) for x in rnd.kept]
    act = [int(bool(x)) for x in rnd.active]
    base = [int(x) for x in rnd.base_weights]
    rep0 = [int(x) for x in rnd.reputations]
    g2 = rnd.gamma_q * rnd.gamma_q

    sq = fixedpoint.exact_squared_norms(q) if n else []
    clip_t, clip_rem, clip_s, factors = [], [], [], []
    for i in range(n):
        le = sq[i] <= g2
        num, den = (0, 1) if le else (g2 * ONE * ONE, sq[i])
        clip_t.append(num // den)
        clip_rem.append(num % den)
        clip_s.append(math.isqrt(clip_t[-1]))
        factors.append(sub[i] * (ONE if le else clip_s[-1]))
    _check(factors == outcome.clip_factors, "clip factors")

    m = [k * a * s for k, a, s in zip(kept, act, sub, strict=True)]
    w_q = [(b * c) // ONE for b, c in zip(base, factors, strict=True)]
    w_rem = [(b * c) % ONE for b, c in zip(base, factors, strict=True)]
    weights = [mi * w for mi, w in zip(m, w_q, strict=True)]
    _check(weights == outcome.weights, "weights")

    den = sum(mi * b for mi, b in zip(m, base, strict=True)) or 1
    numer = [sum(weights[i] * rows[i][j] for i in range(n)) for j in range(shape.d)]
    agg = [x // den for x in numer]
    agg_rem = [x % den for x in numer]
    _check(agg == [int(x) for x in outcome.aggregate.tolist()], "aggregate")

    aggsq = sum(u * u for u in agg)
    dots = [sum(a * b for a, b in zip(row, agg, strict=True)) for row in rows]
    cos_t, cos_rem, cos_s, phis = [], [], [], []
    for i in range(n):
        cden = sq[i] * aggsq or 1
        cnum = ONE * ONE * dots[i] * dots[i]
        cos_t.append(cnum // cden)
        cos_rem.append(cnum % cden)
        cos_s.append(math.isqrt(cos_t[-1]))
        sign = 1 if dots[i] >= 0 else -1
        phi = (sign * cos_s[-1] if sub[i] else missing_fp) if act[i] else 0
        phis.append(min(phi, missing_fp) if capped and act[i] and not kept[i] else phi)
    _check(phis == outcome.phis, "cosines")

    rep_num = [rnd.alpha_fp * r + (ONE - rnd.alpha_fp) * p for r, p in zip(rep0, phis, strict=True)]
    rep_y = [x // ONE for x in rep_num]
    rep_rem = [x % ONE for x in rep_num]
    stepped = [a * max(0, y) for a, y in zip(act, rep_y, strict=True)]

    def normalise_hints(values: list[int]) -> tuple[list[int], list[int]]:
        total = sum(values) or 1
        return [v * ONE // total for v in values], [v * ONE % total for v in values]

    n1_q, n1_rem = normalise_hints(stepped)
    count = sum(act)
    removed = [a * int(r * count * beta.denominator < beta.numerator * ONE) for a, r in zip(act, n1_q, strict=True)]
    kept_rep = [(1 - rm) * r for rm, r in zip(removed, n1_q, strict=True)]
    n2_q, n2_rem = normalise_hints(kept_rep)
    _check(n2_q == outcome.reputations and [bool(x) for x in removed] == outcome.removed, "reputations")

    commitments = [commit_update(row, salts[i], shape.value_bits) for i, row in enumerate(rows)]
    model = commit_update(agg, rnd.model_salt, shape.value_bits)
    flags = [s + 2 * k + 4 * a + 8 * r for s, k, a, r in zip(sub, kept, act, removed, strict=True)]
    statement = RoundStatement(
        weights=weights,
        commitments=commitments,
        model_commitment=model,
        gamma_q=rnd.gamma_q,
        alpha_fp=rnd.alpha_fp,
        beta=beta,
        base_weights=base,
        reputations_before=rep0,
        reputations_after=n2_q,
        flags=flags,
    )

    def fv(values: Sequence[int]) -> list[int]:
        return [_f(v) for v in values]

    inputs: dict[str, Any] = {
        "publicHash": statement.public_hash,
        "q": [fv(row) for row in rows],
        "salt": fv(salts),
        "modelSalt": _f(rnd.model_salt),
        "submitted": sub,
        "kept": kept,
        "active": act,
        "base": base,
        "repOld": rep0,
        "gamma": rnd.gamma_q,
        "alpha": rnd.alpha_fp,
        "betaNum": beta.numerator,
        "betaDen": beta.denominator,
        "clipT": clip_t,
        "clipRem": clip_rem,
        "clipS": clip_s,
        "wQ": w_q,
        "wRem": w_rem,
        "aggQ": fv(agg),
        "aggRem": agg_rem,
        "cosT": cos_t,
        "cosRem": cos_rem,
        "cosS": cos_s,
        "repY": fv(rep_y),
        "repRem": rep_rem,
        "n1Q": n1_q,
        "n1Rem": n1_rem,
        "n2Q": n2_q,
        "n2Rem": n2_rem,
    }
    return Witness(inputs=inputs, statement=statement, outcome=outcome)
