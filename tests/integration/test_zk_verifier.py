"""The deployed PedersenAggregationVerifier on a real Anvil chain (EIP-196 precompiles)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from marketplace.chain.session import ChainSession
from marketplace.errors import ContractRevert
from zk import auditor, pedersen
from zk.curve import CURVE_ORDER, FIELD_MODULUS, INFINITY, Point, negate
from zk.generators import Generators, forget_in_memory, load_generators
from zk.onchain import PedersenVerifier

pytestmark = pytest.mark.integration

N, D = 10, 256
SessionFor = Callable[[int], ChainSession]


@pytest.fixture(scope="module")
def gens(tmp_path_factory: pytest.TempPathFactory) -> Generators:
    forget_in_memory()
    return load_generators(D, cache=tmp_path_factory.mktemp("zk-cache"))


@pytest.fixture
def verifier(session_for: SessionFor) -> PedersenVerifier:
    contract, _ = PedersenVerifier.deploy(session_for(0))
    return contract


@pytest.fixture(scope="module")
def round_data(gens: Generators) -> dict[str, object]:
    rng = np.random.default_rng(11)
    updates = [rng.integers(-(2**15), 2**15, size=D) for _ in range(N)]
    blindings = [pedersen.random_blinding() for _ in range(N)]
    weights = [int(w) for w in rng.integers(1, 2**20, size=N)]
    weights[4] = 0  # one data owner removed this round
    commitments = [pedersen.commit(u, b, generators=gens) for u, b in zip(updates, blindings, strict=True)]
    return {"updates": updates, "blindings": blindings, "weights": weights, "commitments": commitments}


def model_commitment(data: dict, gens: Generators, *, values_delta: int = 0, weights=None, blindings=None) -> Point:
    """What an aggregator posts: Com(Σ w_i u_i, Σ w_i ρ_i), optionally computed from altered inputs."""
    weights = weights or data["weights"]
    aggregate = pedersen.aggregate_values(data["updates"], weights)
    aggregate[0] += values_delta
    blinding = pedersen.aggregate_blinding(blindings or data["blindings"], weights)
    return pedersen.commit(aggregate, blinding, generators=gens)


def reverts(name: str, call: Callable[[], object]) -> ContractRevert:
    with pytest.raises(ContractRevert) as info:
        call()
    assert info.value.error_name == name, str(info.value)
    return info.value


def test_correct_aggregate_is_accepted_and_gas_is_measured(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    model = model_commitment(round_data, gens)
    assert verifier.aggregate_commitment(round_data["commitments"], round_data["weights"]) == model
    result = verifier.measure(round_data["commitments"], round_data["weights"], model, b"\x01\x02")
    assert result.valid
    # 9 non-zero weights: 9 ecMul (6000) + 8 ecAdd (150) + calldata + 21k: DESIGN measured ~109k for n=10
    assert 80_000 < result.gas < 120_000, result.gas
    assert auditor.check_aggregation(round_data["commitments"], round_data["weights"], model).passed


def test_aggregate_differing_in_one_coordinate_is_rejected(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    model = model_commitment(round_data, gens, values_delta=1)
    assert not verifier.verify_round(round_data["commitments"], round_data["weights"], model)


def test_aggregate_with_one_weight_changed_is_rejected(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    honest = round_data["weights"]
    altered = [*honest[:2], honest[2] + 1, *honest[3:]]
    # the aggregator aggregated with the altered weight but posts the honest ones ...
    model = model_commitment(round_data, gens, weights=altered)
    assert not verifier.verify_round(round_data["commitments"], honest, model)
    # ... or posts the altered weights with the honest aggregate
    assert not verifier.verify_round(round_data["commitments"], altered, model_commitment(round_data, gens))


def test_aggregate_with_one_blinding_changed_is_rejected(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    blindings = list(round_data["blindings"])
    blindings[7] = (blindings[7] + 1) % CURVE_ORDER
    model = model_commitment(round_data, gens, blindings=blindings)
    assert not verifier.verify_round(round_data["commitments"], round_data["weights"], model)


def test_malformed_input_reverts_with_named_errors(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    commitments, weights = list(round_data["commitments"]), list(round_data["weights"])
    model = model_commitment(round_data, gens)
    reverts("LengthMismatch", lambda: verifier.verify_round(commitments, weights[:-1], model))
    error = reverts("WeightNotInField", lambda: verifier.verify_round(commitments, [CURVE_ORDER, *weights[1:]], model))
    assert error.error_args == {"index": 0, "weight": CURVE_ORDER}
    off_curve = [*commitments[:3], (1, 3), *commitments[4:]]
    assert reverts("InvalidCommitment", lambda: verifier.verify_round(off_curve, weights, model)).error_args == {
        "index": 3
    }
    unreduced = [(commitments[0][0] + FIELD_MODULUS, commitments[0][1]), *commitments[1:]]
    reverts("InvalidCommitment", lambda: verifier.verify_round(unreduced, weights, model))
    at_infinity = [INFINITY, *commitments[1:]]
    reverts("CommitmentAtInfinity", lambda: verifier.verify_round(at_infinity, weights, model))
    reverts("InvalidModelCommitment", lambda: verifier.verify_round(commitments, weights, (1, 3)))
    reverts("ModelCommitmentAtInfinity", lambda: verifier.verify_round(commitments, weights, INFINITY))
    reverts("NoWeightedCommitment", lambda: verifier.verify_round(commitments, [0] * N, model))


def test_zero_weight_points_are_never_read(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    commitments = list(round_data["commitments"])
    commitments[4] = (1, 3)  # garbage from the removed data owner (weight 0)
    assert verifier.verify_round(commitments, round_data["weights"], model_commitment(round_data, gens))


def test_negated_model_is_rejected(verifier: PedersenVerifier, round_data: dict, gens) -> None:
    model = negate(model_commitment(round_data, gens))
    assert not verifier.verify_round(round_data["commitments"], round_data["weights"], model)
