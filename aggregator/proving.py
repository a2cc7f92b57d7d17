"""Glue from a round to the zk package: commitments to an update, the rules proof, the task's verifier.

Data owners, the aggregator and the owner all call these, so each commitment has one definition
here: Pedersen over the flat quantized update (canonical tensor order), Poseidon over its packing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from marketplace.chain.session import ChainSession
from marketplace.task_spec import ProtocolSpec
from zk.curve import Point
from zk.groth16.rules import CircuitShape, RoundInputs, commit_update
from zk.pedersen import commit

_KEYS: dict[tuple[CircuitShape, str], object] = {}


def pedersen_commitment(q: np.ndarray, blinding: int, rules: ProtocolSpec) -> Point:
    """C = Σ q_j·G_j + ρ·H with the task's generator tag."""
    return commit(np.asarray(q, dtype=np.int64), blinding, tag=rules.generator_tag)


def poseidon_commitment(q: np.ndarray, salt: int, rules: ProtocolSpec) -> int:
    """The circuit's commitment to the same vector (zk.groth16.rules.commit_update)."""
    return commit_update(np.asarray(q, dtype=np.int64), salt, rules.value_bits)


def circuit_shape(n: int, d: int, rules: ProtocolSpec) -> CircuitShape:
    return CircuitShape(n, d, rules.value_bits)


def load_keys(shape: CircuitShape, cache: str | Path | None = None):  # type: ignore[no-untyped-def]
    """Cached circuit keys (zk.groth16.keys.setup_keys runs the UNSAFE single-party setup on a miss)."""
    from zk.groth16.keys import setup_keys

    key = (shape, str(cache))
    if key not in _KEYS:
        _KEYS[key] = setup_keys(shape, cache)
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
class DeployedVerifier:
    address: str
    verifying_key: str  # snarkjs JSON, empty for layer 1 only
    label: str
    gas: int


def deploy_verifier(
    session: ChainSession, rules: ProtocolSpec, n: int, d: int, cache: str | Path | None = None
) -> DeployedVerifier:
    """The task's IRoundVerifier: the Pedersen verifier (layer 1) or RulesRoundVerifier over it (1 + 2)."""
    from zk.onchain import PedersenVerifier

    pedersen, gas = PedersenVerifier.deploy(session)
    if rules.proof != "groth16":
        return DeployedVerifier(pedersen.address, "", "", gas)
    from zk.groth16.solidity import deploy, verifying_key_json

    keys = load_keys(circuit_shape(n, d, rules), cache)
    chain = deploy(session, keys, pedersen.address)  # type: ignore[arg-type]
    vk = json.dumps(verifying_key_json(keys), sort_keys=True)  # type: ignore[arg-type]
    return DeployedVerifier(chain.adapter.address, vk, keys.label, gas + chain.deploy_gas)  # type: ignore[attr-defined]
