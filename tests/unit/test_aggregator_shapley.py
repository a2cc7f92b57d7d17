"""Shapley contributions: the axioms on exact values, GTG close to exact, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aggregator.shapley import (
    BatchedModelEvaluator,
    CoalitionUtility,
    exact_shapley,
    gtg_shapley,
    payout_shares,
    round_shapley,
)
from marketplace.models import ModelSpec, build_model, flatten, model_to_arrays


def _quadratic_utility(target: np.ndarray):
    """v(θ) = −‖θ − target‖²: smooth, so sub-model means give distinct utilities."""

    def evaluate(params: np.ndarray) -> np.ndarray:
        return -np.sum((params.astype(np.float64) - target) ** 2, axis=1)

    return evaluate


def _game(n: int, seed: int = 0) -> CoalitionUtility:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=8)
    deltas = target[None, :] * rng.uniform(0.2, 1.2, size=(n, 1)) + 0.3 * rng.normal(size=(n, 8))
    return CoalitionUtility(np.zeros(8), deltas, _quadratic_utility(target))


def _brute_force(utility: CoalitionUtility) -> np.ndarray:
    n = utility.n
    values = np.zeros(n)
    perms = list(itertools.permutations(range(n)))
    for perm in perms:
        mask = 0
        for player in perm:
            before = utility.value(mask)
            mask |= 1 << player
            values[player] += utility.value(mask) - before
    return values / len(perms)


def test_exact_matches_permutation_definition_and_efficiency() -> None:
    utility = _game(5)
    result = exact_shapley(utility)
    np.testing.assert_allclose(result.values, _brute_force(utility), atol=1e-9)
    full = utility.value((1 << 5) - 1)
    assert result.values.sum() == pytest.approx(full - utility.value(0), abs=1e-9)
    assert result.evaluations == 2**5


def test_symmetric_players_get_equal_values_and_null_player_zero() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(size=6)
    same = target * 0.5
    deltas = np.stack([same, same, target * 0.8, np.zeros(6)])
    # a null player must not change any coalition's mean: evaluate on sums instead of means
    utility = CoalitionUtility(np.zeros(6), deltas, _quadratic_utility(target))
    values = exact_shapley(utility).values
    assert values[0] == pytest.approx(values[1], abs=1e-12)

    def additive(params: np.ndarray) -> np.ndarray:
        return params[:, 0].astype(np.float64)

    class SumUtility(CoalitionUtility):
        def values(self, masks):  # type: ignore[override]
            return np.array([sum(float(self.deltas[i, 0]) for i in range(self.n) if (m >> i) & 1) for m in masks])

    game = SumUtility(np.zeros(2), np.array([[1.0, 0], [2.0, 0], [0.0, 0]]), additive)
    np.testing.assert_allclose(exact_shapley(game).values, [1.0, 2.0, 0.0], atol=1e-12)


def test_gtg_close_to_exact_and_deterministic() -> None:
    exact = exact_shapley(_game(7, seed=3)).values
    first = gtg_shapley(_game(7, seed=3), seed=11, epsilon=1e-9, max_permutations=400)
    second = gtg_shapley(_game(7, seed=3), seed=11, epsilon=1e-9, max_permutations=400)
    np.testing.assert_array_equal(first.values, second.values)
    assert first.permutations >= 30
    scale = np.abs(exact).sum()
    assert np.abs(first.values - exact).sum() / scale < 0.15
    assert np.corrcoef(first.values, exact)[0, 1] > 0.95


def test_gtg_between_round_truncation_returns_zeros_cheaply() -> None:
    utility = CoalitionUtility(np.zeros(3), np.zeros((4, 3)), lambda p: np.zeros(p.shape[0]))
    result = gtg_shapley(utility, seed=0, round_threshold=1e-3)
    assert result.round_truncated
    assert np.all(result.values == 0)
    assert result.evaluations <= 2


def test_memo_counts_each_coalition_once() -> None:
    utility = _game(4)
    utility.values([0, 1, 1, 3])
    utility.values([3, 2])
    assert utility.evaluations == 4


def test_batched_evaluator_matches_torch_model() -> None:
    spec = ModelSpec("mlp", 5, 3, (4,))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 5)).astype(np.float32)
    labels = rng.integers(0, 3, size=40)
    vectors = np.stack([flatten(model_to_arrays(build_model(spec, seed=s)), spec) for s in range(3)])
    evaluator = BatchedModelEvaluator(spec, features, labels)
    import torch

    expected = []
    for seed in range(3):
        model = build_model(spec, seed=seed)
        with torch.no_grad():
            expected.append(float((model(torch.from_numpy(features)).argmax(1).numpy() == labels).mean()))
    np.testing.assert_allclose(evaluator(vectors), expected)


def test_round_shapley_auto_picks_method_and_payout_is_nonnegative() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=4)
    deltas = target[None, :] + 0.1 * rng.normal(size=(3, 4))
    result = round_shapley(np.zeros(4), deltas, _quadratic_utility(target), seed=1)
    assert result.method == "exact"
    shares = payout_shares(np.array([0.5, -0.2, 0.5]))
    np.testing.assert_allclose(shares, [0.5, 0.0, 0.5])
    np.testing.assert_allclose(payout_shares(np.array([-1.0, 0.0]), np.array([1.0, 3.0])), [0.25, 0.75])
