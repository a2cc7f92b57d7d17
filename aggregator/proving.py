"""Glue from a round to the zk package: commitments to an update, the rules proof, the task's verifier.

Data owners, the aggregator and the owner all call these, so each commitment has one definition
here: Pedersen over the flat quantized update (canonical tensor order), Poseidon over its packing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marketplace.chain.session import ChainSession
from marketplace.task_spec import ProtocolSpec
from zk.curve import Point
from zk.groth16.rules import CircuitShape, RoundInputs, commit_update
from zk.pedersen import commit

_KEYS: dict[tuple[CircuitShape, str, str], object] = {}


def pedersen_commitment(q: np.ndarray, blinding: int, rules: ProtocolSpec) -> Point:
    """C = Σ q_j·G_j + ρ·H with the task's generator tag."""
    return commit(np.asarray(q, dtype=np.int64), blinding, tag=rules.generator_tag)


def poseidon_commitment(q: np.ndarray, salt: int, rules: ProtocolSpec) -> int:
    """The circuit's commitment to the same vector (zk.groth16.rules.commit_update)."""
    return commit_update(np.asarray(q, dtype=np.int64), salt, rules.value_bits)


def circuit_shape(n: int, d: int, rules: ProtocolSpec) -> CircuitShape:
    return CircuitShape(n, d, rules.value_bits)


def circuit_spec(rule_version: str = "rffl-v1"):  # type: ignore[no-untyped-def]
    """The zk.groth16.keys.CircuitSpec of a rule version (rffl-v1 to rffl-v4)."""
    from zk.groth16.keys import RULES_V1, RULES_V2, RULES_V3, RULES_V4

    specs = {spec.version: spec for spec in (RULES_V1, RULES_V2, RULES_V3, RULES_V4)}
    if rule_version not in specs:
        raise ValueError(f"unknown rule version {rule_version!r}; known: {', '.join(specs)}")
    return specs[rule_version]


def load_keys(shape: CircuitShape, cache: str | Path | None = None, rule_version: str = "rffl-v1"):  # type: ignore[no-untyped-def]
    """Cached circuit keys of a rule version (zk.groth16.keys.setup_keys runs the UNSAFE single-party setup on a
    miss). The process keeps them, so a daemon loads a big proving key once."""
    from zk.groth16.keys import setup_keys

    key = (shape, str(cache), rule_version)
    if key not in _KEYS:
        _KEYS[key] = setup_keys(shape, cache, spec=circuit_spec(rule_version))
    return _KEYS[key]


@dataclass(frozen=True)
class Proved:
    proof: bytes
    label: str
    seconds: float


def prove_rules(
    shape: CircuitShape, inputs: RoundInputs, weights: list[int], cache: str | Path | None = None
) -> Proved:
    """Groth16 proof that `weights` follow rffl-v1 from the committed rows; refuses if they would differ."""
    from zk.groth16.prover import prove_round

    result = prove_round(load_keys(shape, cache), inputs)  # type: ignore[arg-type]
    if list(result.witness.statement.weights) != list(weights):
        raise RuntimeError("the proven weights differ from the round's weights (aggregator bug)")
    return Proved(result.proof.to_bytes(), result.proof.label, result.seconds)


@dataclass(frozen=True)
class LinkedRound:
    """What an rffl-v2 round publishes besides the proof: the chain's link seed, the circuit's evaluation t and
    the Σ-proof that the Pedersen-committed updates evaluate to t (zk.groth16.linked)."""

    digest: int
    seed: int
    t: int
    link_proof: dict[str, Any]  # LinkProof.to_json()


def link_round(
    q: np.ndarray, blindings: list[int], commitments: list[Point], model_commitment: Point, digest: int,
    submitted: list[bool], rules: ProtocolSpec,
) -> LinkedRound:  # fmt: skip
    """Seed s exactly as LinkedRulesRoundVerifier derives it (keccak of the commitments, the model commitment and
    the v2 digest), t over the rows the rules run on, and the Σ-proof from the owners' Pedersen openings. Its
    nonces are derived from those secret openings, so a rerun of the round publishes the same record."""
    from zk.groth16.linked import link_seed, link_value, prove_link

    seed = link_seed(commitments, model_commitment, digest)
    t = link_value(q, submitted, seed)
    proof = prove_link(list(q), blindings, commitments, submitted, seed, t, tag=rules.generator_tag,
                       deterministic=True)  # fmt: skip
    return LinkedRound(digest, seed, t, proof.to_json())


def linked_rule(rules: ProtocolSpec):  # type: ignore[no-untyped-def]
    """The zk.groth16.linked.LinkedRule of an rffl-v2, rffl-v3 or rffl-v4 task: its version, τ, K and M."""
    from zk.groth16.linked import LinkedRule

    return LinkedRule(rules.rule_version, rules.filter_threshold_fp, rules.norm_ratio_sq_fp, rules.missing_score_fp)


def prove_linked_rules(
    shape: CircuitShape, inputs: RoundInputs, weights: list[int], commitments: list[Point], model_commitment: Point,
    rules: ProtocolSpec, expected: LinkedRound | None = None, cache: str | Path | None = None,
) -> Proved:  # fmt: skip
    """Groth16 proof that `weights` follow the task's linked rule version (rules, the proven filters, the link's
    t) on the committed rows; refuses if the weights, or the digest, seed and t already published (`expected`),
    differ."""
    from zk.groth16.linked import prove_linked_round

    rule = linked_rule(rules)
    keys = load_keys(shape, cache, rule.version)
    result = prove_linked_round(keys, inputs, commitments, model_commitment, rule)  # type: ignore[arg-type]
    linked = result.witness.linked
    if list(linked.weights) != list(weights):
        raise RuntimeError("the proven weights differ from the round's weights (aggregator bug)")
    if expected is not None and (linked.digest, linked.seed, linked.t) != (expected.digest, expected.seed, expected.t):
        raise RuntimeError("the proof's digest, seed or t differ from the published link (aggregator bug)")
    return Proved(result.proof.to_bytes(), result.proof.label, result.seconds)


@dataclass(frozen=True)
class DeployedVerifier:
    address: str
    verifying_key: str  # snarkjs JSON, empty for layer 1 only
    label: str
    gas: int


def deploy_verifier(
    session: ChainSession, rules: ProtocolSpec, n: int, d: int, cache: str | Path | None = None
) -> DeployedVerifier:
    """The task's IRoundVerifier: the Pedersen verifier (layer 1), or over it the Groth16 adapter of the task's
    rule version (1 + 2): LinkedRulesRoundVerifier for rffl-v2, RulesRoundVerifier for rffl-v1."""
    from zk.onchain import PedersenVerifier

    pedersen, gas = PedersenVerifier.deploy(session)
    if rules.proof != "groth16":
        return DeployedVerifier(pedersen.address, "", "", gas)
    from zk.groth16.solidity import deploy, verifying_key_json

    keys = load_keys(circuit_shape(n, d, rules), cache, rules.rule_version)
    chain = deploy(session, keys, pedersen.address)  # type: ignore[arg-type]
    vk = json.dumps(verifying_key_json(keys), sort_keys=True)  # type: ignore[arg-type]
    return DeployedVerifier(chain.adapter.address, vk, keys.label, gas + chain.deploy_gas)  # type: ignore[attr-defined]
