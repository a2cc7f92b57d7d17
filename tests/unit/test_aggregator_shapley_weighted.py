"""Weighted coalitions for round Shapley, the spec option that selects them, and the simulator's
product-like local training (momentum) with per-round Shapley values on record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aggregator.pipeline import PipelineSpecError, build_pipeline
from aggregator.shapley import CoalitionUtility, exact_shapley, payout_shares, round_shapley
from aggregator.simulation import SimulationConfig, run_simulation


def _quadratic(target: np.ndarray):
    def evaluate(params: np.ndarray) -> np.ndarray:
        return -np.sum((params.astype(np.float64) - target) ** 2, axis=1)

    return evaluate


def _deltas(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=6)
    deltas = target[None, :] * rng.uniform(0.3, 1.2, size=(n, 1)) + 0.3 * rng.normal(size=(n, 6))
    return target, deltas


def test_uniform_weights_equal_the_plain_mean() -> None:
    target, deltas = _deltas(5)
    plain = exact_shapley(CoalitionUtility(np.zeros(6), deltas, _quadratic(target)))
    uniform = exact_shapley(CoalitionUtility(np.zeros(6), deltas, _quadratic(target), weights=np.full(5, 3.0)))
    np.testing.assert_allclose(plain.values, uniform.values, atol=1e-5)


def test_weighted_grand_coalition_is_the_weighted_aggregate_and_values_are_efficient() -> None:
    target, deltas = _deltas(6, seed=1)
    weights = np.array([5.0, 1.0, 2.0, 0.5, 3.0, 1.5])
    utility = CoalitionUtility(np.zeros(6), deltas, _quadratic(target), weights=weights)
    result = exact_shapley(utility)
    aggregate = (weights / weights.sum()) @ deltas
    assert result.full_utility == pytest.approx(float(_quadratic(target)(aggregate[None, :])[0]), rel=1e-5)
    assert result.values.sum() == pytest.approx(result.full_utility - result.empty_utility, rel=1e-6)


def test_zero_weight_player_is_a_null_player() -> None:
    target, deltas = _deltas(5, seed=2)
    weights = np.array([1.0, 0.0, 2.0, 1.0, 1.0])
    result = round_shapley(np.zeros(6), deltas, _quadratic(target), seed=0, method="exact", weights=weights)
    assert result.values[1] == pytest.approx(0.0, abs=1e-9)
    assert np.count_nonzero(np.abs(result.values) > 1e-9) == 4


def test_bad_weights_are_refused() -> None:
    target, deltas = _deltas(3)
    with pytest.raises(ValueError):
        CoalitionUtility(np.zeros(6), deltas, _quadratic(target), weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError):
        CoalitionUtility(np.zeros(6), deltas, _quadratic(target), weights=np.ones(4))


def test_spec_accepts_coalition_option_and_refuses_unknown_values() -> None:
    spec = {"rules": [], "reputation": "rffl", "contribution": {"name": "shapley", "coalition": "weighted"}}
    assert build_pipeline(spec).contribution_options["coalition"] == "weighted"
    with pytest.raises(PipelineSpecError, match="coalition"):
        build_pipeline({**spec, "contribution": {"name": "shapley", "coalition": "median"}})


def _short(attack: str = "sign_flip", **extra: object) -> SimulationConfig:
    return SimulationConfig(
        dataset="breast_cancer",
        n_owners=5,
        rounds=4,
        attack=attack,
        attacker_fraction=0.2,
        hidden=(8,),
        epochs=2,
        batch_size=32,
        momentum=0.9,
        aggregation={
            "rules": [{"name": "clip", "gamma": 1.0}],
            "reputation": "rffl",
            "contribution": {"name": "shapley", "method": "exact", **extra},
        },
    )


def test_momentum_training_removes_the_sign_flipper_within_three_rounds() -> None:
    torch.set_num_threads(1)
    result = run_simulation(_short())
    (attacker,) = result.attackers
    assert result.removed_round.get(attacker, 99) <= 3
    assert not set(result.removed_round) - {attacker}
    assert result.config["momentum"] == 0.9


def test_round_values_are_recorded_and_match_the_summed_payout() -> None:
    torch.set_num_threads(1)
    result = run_simulation(_short(coalition="weighted"))
    assert len(result.round_values["accuracy"]) == len(result.round_values["neg_loss"]) == 4
    sums = np.array([sum(r.get(o, 0.0) for r in result.round_values["neg_loss"]) for o in result.owners])
    expected = payout_shares(sums)
    np.testing.assert_allclose([result.payout["shapley_loss"][o] for o in result.owners], expected, atol=1e-12)
    # a removed owner is not in later rounds' values
    for owner, removed in result.removed_round.items():
        assert all(owner not in r for r in result.round_values["accuracy"][removed:])


def test_gain_weighted_loss_payout_shares_each_round_gain_by_positive_value() -> None:
    torch.set_num_threads(1)
    result = run_simulation(_short())
    paid = dict.fromkeys(result.owners, 0.0)
    for values, gain in zip(result.round_values["neg_loss"], result.round_gains["neg_loss"], strict=True):
        if not values:
            continue
        owners = list(values)
        for owner, share in zip(owners, payout_shares(np.array([values[o] for o in owners])), strict=True):
            paid[owner] += max(gain, 0.0) * share
    expected = payout_shares(np.array([paid[o] for o in result.owners]))
    got = [result.payout["shapley_loss_gain"][o] for o in result.owners]
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert sum(got) == pytest.approx(1.0)
    # exact Shapley is efficient: each round's values add up to that round's gain
    for values, gain in zip(result.round_values["neg_loss"], result.round_gains["neg_loss"], strict=True):
        assert sum(values.values()) == pytest.approx(gain, abs=1e-6)
    (attacker,) = result.attackers
    honest = [o for o in result.owners if o != attacker]
    assert result.payout["shapley_loss_gain"][attacker] < min(result.payout["shapley_loss_gain"][o] for o in honest)
