"""The auditor's check of the Poseidon ↔ Pedersen link (rule version rffl-v2) with py_ecc only.

Given the owners' Pedersen commitments and the submitted flags (from the chain and the statement), the chain's
seed and the proof's t (calldata of verifyRound), and the round's LinkProof (published with the round), it
recomputes V = Σ e_i·C_i and checks the Σ-proof's two equations (zk/groth16/linked.py):
    Com(σ, σ_ρ) = A + c·V      and      ⟨z, σ⟩ = a + c·t.
A pass means the vectors inside the Pedersen commitments evaluate to the same t as the vectors the Groth16
proof ran the rules on, which (seed chosen after all commitments) means they are the same vectors, except with
probability ≤ n·d/r.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
from py_ecc import optimized_bn128 as bn

from zk.auditor import PY_ECC, Check, _affine, _jacobian, commit_py_ecc, weighted_sum
from zk.curve import CURVE_ORDER, INFINITY, Point, is_on_curve
from zk.generators import DEFAULT_TAG, Generators, load_generators
from zk.groth16.linked import LinkProof, _fs_challenge, pedersen_challenges


def check_link(
    commitments: Sequence[Point],
    submitted: Sequence[bool],
    seed: int,
    t: int,
    proof: LinkProof,
    *,
    generators: Generators | None = None,
    tag: str = DEFAULT_TAG,
    cache: str | os.PathLike[str] | None = None,
    projection: np.ndarray | None = None,
) -> Check:
    """Verify a LinkProof independently of mcl; the message says which equation failed."""
    start = time.perf_counter()
    d = len(proof.sigma)

    def done(passed: bool, detail: str) -> Check:
        return Check("poseidon-pedersen link", passed, detail, time.perf_counter() - start, PY_ECC)

    if d == 0 or any(not 0 <= x < CURVE_ORDER for x in [*proof.sigma, proof.sigma_blinding, proof.a_value, t]):
        return done(False, "malformed link proof: values must be canonical elements of F_r")
    a_point = (int(proof.a_point[0]), int(proof.a_point[1]))
    if a_point == INFINITY or not is_on_curve(a_point):
        return done(False, "malformed link proof: A is not a finite BN254 G1 point")
    e, z = pedersen_challenges(seed, len(commitments), d, submitted, projection)
    try:
        v_point = weighted_sum(commitments, e)
    except ValueError as exc:
        return done(False, f"malformed round data: {exc}")
    c = _fs_challenge(seed, t, v_point, a_point, proof.a_value)
    if (
        sum(zj * sj for zj, sj in zip(z, proof.sigma, strict=True)) % CURVE_ORDER
        != (proof.a_value + c * t) % CURVE_ORDER
    ):
        return done(
            False, "link FAILED: the response does not evaluate to the proof's t (commitments hold other vectors)"
        )
    gens = generators.prefix(d) if generators is not None else load_generators(d, tag, cache)
    lhs = commit_py_ecc(proof.sigma, proof.sigma_blinding, gens)
    rhs = bn.add(_jacobian(a_point), bn.multiply(_jacobian(v_point), c)) if v_point != INFINITY else _jacobian(a_point)
    if lhs != _affine(rhs):
        return done(False, "link FAILED: the response does not open A + c·Σ e_i C_i")
    return done(True, f"the {sum(map(bool, submitted))} Pedersen-committed updates are the ones the rules proof used")
