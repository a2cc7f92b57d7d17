"""The auditor's Groth16 check with py_ecc: it trusts neither the prover nor groth16py/arkworks.

Verifies e(A, B) = e(α, β)·e(vk_x, γ)·e(C, δ) with vk_x = IC₀ + Σ xᵢ·ICᵢ (Groth 2016, §3.2)
in pure-Python BN254 arithmetic (`py_ecc.optimized_bn128`), as one product of Miller loops
and a single final exponentiation — the same equation the EIP-197 precompile checks on chain.
Inputs: the snarkjs-format verifying key JSON (zk.groth16.solidity.verifying_key_json or the
key's vk.json) and the 256-byte proof in Ethereum word order (a, b with G2 words (c1, c0), c).
The proof's points are checked to lie on the curve and B in the order-r subgroup of G2.
Results carry the key's provenance label, so an unsafe single-party setup is always visible.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from py_ecc import optimized_bn128 as bn
from py_ecc.optimized_bn128 import optimized_pairing as op

from zk.auditor import PY_ECC, Check
from zk.curve import CURVE_ORDER, FIELD_MODULUS
from zk.groth16.prover import ROUND_PROOF_BYTES, RoundProof
from zk.groth16.rules import public_hash

G1P = tuple[bn.FQ, bn.FQ, bn.FQ]
G2P = tuple[bn.FQ2, bn.FQ2, bn.FQ2]


class MalformedProof(ValueError):
    """A proof or key element is not a valid curve point."""


def _g1(x: int, y: int) -> G1P:
    if not (0 <= x < FIELD_MODULUS and 0 <= y < FIELD_MODULUS):
        raise MalformedProof("G1 coordinate not below p")
    point = (bn.FQ(x), bn.FQ(y), bn.FQ(1))
    if (x, y) == (0, 0) or not bn.is_on_curve(point, bn.b):
        raise MalformedProof(f"({x:#x}, {y:#x}) is not a finite point of BN254 G1")
    return point


def _g2(x: Sequence[int], y: Sequence[int], *, subgroup: bool) -> G2P:
    if any(not 0 <= int(v) < FIELD_MODULUS for v in (*x, *y)):
        raise MalformedProof("G2 coordinate not below p")
    point = (bn.FQ2([int(x[0]), int(x[1])]), bn.FQ2([int(y[0]), int(y[1])]), bn.FQ2.one())
    if not bn.is_on_curve(point, bn.b2):
        raise MalformedProof("a G2 point is not on the twist")
    if subgroup and not bn.is_inf(bn.multiply(point, CURVE_ORDER)):
        raise MalformedProof("a G2 point is outside the order-r subgroup")
    return point


def _vk_g1(entry: Sequence[str]) -> G1P:
    return _g1(int(entry[0]), int(entry[1]))


def _vk_g2(entry: Sequence[Sequence[str]]) -> G2P:
    return _g2([int(v) for v in entry[0]], [int(v) for v in entry[1]], subgroup=False)


def parse_proof(proof: bytes) -> tuple[G1P, G2P, G1P]:
    """(A, B, C) from the 256-byte Ethereum encoding (G2 words in (c1, c0) order, as EIP-197)."""
    if len(proof) != 256:
        raise MalformedProof(f"a Groth16 proof is 256 bytes, got {len(proof)}")
    w = [int.from_bytes(proof[i : i + 32], "big") for i in range(0, 256, 32)]
    a = _g1(w[0], w[1])
    b = _g2([w[3], w[2]], [w[5], w[4]], subgroup=True)
    c = _g1(w[6], w[7])
    return a, b, c


def pairing_check(vk: dict[str, Any], proof: bytes, public_inputs: Sequence[int]) -> bool:
    """True iff the Groth16 equation holds; raises MalformedProof on malformed points or inputs."""
    ic = [_vk_g1(p) for p in vk["IC"]]
    if len(public_inputs) != len(ic) - 1:
        raise MalformedProof(f"{len(public_inputs)} public inputs for a key expecting {len(ic) - 1}")
    if any(not 0 <= int(x) < CURVE_ORDER for x in public_inputs):
        raise MalformedProof("a public input is not below r")
    a, b, c = parse_proof(proof)
    vk_x = ic[0]
    for x, point in zip(public_inputs, ic[1:], strict=True):
        vk_x = bn.add(vk_x, bn.multiply(point, int(x)))
    product = bn.FQ12.one()
    for q, p in (
        (b, bn.neg(a)),
        (_vk_g2(vk["vk_beta_2"]), _vk_g1(vk["vk_alpha_1"])),
        (_vk_g2(vk["vk_gamma_2"]), vk_x),
        (_vk_g2(vk["vk_delta_2"]), c),
    ):
        if not bn.is_inf(p):
            product = product * op.miller_loop(bn.twist(q), op.cast_point_to_fq12(p), final_exponentiate=False)
    return op.final_exponentiate(product) == bn.FQ12.one()


def check_rules_proof(
    vk: dict[str, Any] | str, proof_bytes: bytes, weights: Sequence[int], *, label: str = ""
) -> Check:
    """Audit a round's rules proof (`RoundProof.to_bytes()` form) against the posted weights.

    `vk` is the snarkjs-format verifying key (dict or JSON text); `label` its provenance.
    """
    start = time.perf_counter()
    key = json.loads(vk) if isinstance(vk, str) else vk
    name = "rules proof (Groth16)"
    suffix = f"; key: {label}" if label else ""
    if len(proof_bytes) != ROUND_PROOF_BYTES:
        return Check(name, False, f"proof must be {ROUND_PROOF_BYTES} bytes, got {len(proof_bytes)}", 0.0, PY_ECC)
    digest = RoundProof.from_bytes(proof_bytes).digest
    if digest >= CURVE_ORDER:
        return Check(name, False, "digest is not a field element", time.perf_counter() - start, PY_ECC)
    return _pairing_verdict(
        name, key, proof_bytes, public_hash(weights, digest), "the posted weights and digest",
        "these weights, this digest or this key", suffix, start,
    )  # fmt: skip


def check_linked_rules_proof(
    vk: dict[str, Any] | str,
    proof_bytes: bytes,
    weights: Sequence[int],
    commitments: Sequence[tuple[int, int]],
    model_commitment: tuple[int, int],
    *,
    label: str = "",
    version: str = "rffl-v2",
) -> Check:
    """Audit a linked (rffl-v2 to rffl-v4) proof (`LinkedRoundProof.to_bytes()`, 320 bytes): the seed is recomputed
    from the Pedersen commitments, the model commitment and the digest, exactly as LinkedRulesRoundVerifier does."""
    from zk.groth16.linked import LINKED_PROOF_BYTES, LinkedRoundProof, link_seed, public_hash_v2

    start = time.perf_counter()
    key = json.loads(vk) if isinstance(vk, str) else vk
    name = "rules proof (Groth16)"  # one audit line per round whatever the rule version; the detail names it
    suffix = f"; key: {label}" if label else ""
    if len(proof_bytes) != LINKED_PROOF_BYTES:
        return Check(
            name, False, f"an {version} proof is {LINKED_PROOF_BYTES} bytes, got {len(proof_bytes)}", 0.0, PY_ECC
        )
    posted = LinkedRoundProof.from_bytes(proof_bytes)
    digest, t = posted.digest, posted.t
    if digest >= CURVE_ORDER or t >= CURVE_ORDER:
        return Check(name, False, "digest or t is not a field element", time.perf_counter() - start, PY_ECC)
    seed = link_seed(commitments, model_commitment, digest)
    return _pairing_verdict(
        name, key, proof_bytes, public_hash_v2(weights, digest, seed, t),
        f"the posted weights, digest, commitments and t ({version}, link seed re-derived from the chain)",
        f"these weights, commitments, digest, t or key ({version})",
        suffix, start,
    )  # fmt: skip


def _pairing_verdict(
    name: str,
    key: dict[str, Any],
    proof_bytes: bytes,
    public_input: int,
    holds_for: str,
    mismatch: str,
    suffix: str,
    start: float,
) -> Check:
    """The pairing check on the first 256 bytes of `proof_bytes` for one public input, as an audit line."""
    try:
        ok = pairing_check(key, proof_bytes[:256], [public_input])
    except MalformedProof as exc:
        return Check(name, False, f"malformed proof: {exc}{suffix}", time.perf_counter() - start, PY_ECC)
    verdict = f"holds for {holds_for}" if ok else f"FAILS: the proof does not match {mismatch}"
    detail = f"pairing equation {verdict}"
    return Check(name, ok, detail + suffix, time.perf_counter() - start, PY_ECC)
