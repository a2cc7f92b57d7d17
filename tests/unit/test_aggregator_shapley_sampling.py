"""GTG-Shapley's antithetic guided sampling and stratified estimator: determinism, axioms, exactness."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.shapley import CoalitionUtility, exact_shapley, gtg_shapley


def _quadratic(target: np.ndarray):
    def evaluate(params: np.ndarray) -> np.ndarray:
        return -np.sum((params.astype(np.float64) - target) ** 2, axis=1)

    return evaluate


def _game(n: int, seed: int = 0, duplicate: bool = False) -> CoalitionUtility:
    rng = np.random.default_rng(seed)
    target = rng.normal(size=8)
    deltas = target[None, :] * rng.uniform(0.2, 1.2, size=(n, 1)) + 0.3 * rng.normal(size=(n, 8))
    if duplicate:
        deltas[1] = deltas[0]
    return CoalitionUtility(np.zeros(8), deltas, _quadratic(target))


def test_default_is_deterministic_given_seed_and_seed_matters() -> None:
    first = gtg_shapley(_game(9, seed=2), seed=5)
    second = gtg_shapley(_game(9, seed=2), seed=5)
    np.testing.assert_array_equal(first.values, second.values)
    assert first.evaluations == second.evaluations and first.permutations == second.permutations
    other = gtg_shapley(_game(9, seed=2), seed=6)
    assert not np.array_equal(first.values, other.values)
    assert first.permutations % 18 == 0  # whole blocks of 2n: every owner leads and ends equally often


def test_efficiency_holds_for_the_stratified_estimate() -> None:
    utility = _game(9, seed=4)
    result = gtg_shapley(utility, seed=1)
    assert result.values.sum() == pytest.approx(result.full_utility - result.empty_utility, abs=1e-9)
    assert result.evaluations < 2**9


def test_exact_once_sampling_has_covered_every_coalition() -> None:
    for n in (3, 4, 5):
        exact = exact_shapley(_game(n, seed=n)).values
        result = gtg_shapley(_game(n, seed=n), seed=0, tolerance=0.0, max_permutations=10_000)
        assert result.evaluations == 2**n
        np.testing.assert_allclose(result.values, exact, atol=1e-9)


def test_three_players_are_exact_after_one_antithetic_block() -> None:
    # every owner leads one walk and ends its reverse: all 2^3 coalitions in the first block
    exact = exact_shapley(_game(3, seed=7)).values
    result = gtg_shapley(_game(3, seed=7), seed=3, max_permutations=6)
    assert result.permutations == 6
    np.testing.assert_allclose(result.values, exact, atol=1e-9)


def test_identical_owners_get_equal_values() -> None:
    exact = gtg_shapley(_game(5, seed=1, duplicate=True), seed=2, tolerance=0.0, max_permutations=10_000)
    assert exact.values[0] == pytest.approx(exact.values[1], abs=1e-9)
    sampled = gtg_shapley(_game(10, seed=1, duplicate=True), seed=2)
    spread = np.ptp(exact_shapley(_game(10, seed=1, duplicate=True)).values)
    assert abs(sampled.values[0] - sampled.values[1]) < 0.1 * spread


def test_stratified_beats_paper_walks_at_similar_cost() -> None:
    errors = {"new": [], "paper": []}
    for seed in range(4):
        exact = exact_shapley(_game(10, seed=seed)).values
        new = gtg_shapley(_game(10, seed=seed), seed=seed)
        paper = gtg_shapley(_game(10, seed=seed), seed=seed, sampling="guided", estimator="walk")
        assert new.evaluations < 2**10
        errors["new"].append(np.abs(new.values - exact).sum() / np.abs(exact).sum())
        errors["paper"].append(np.abs(paper.values - exact).sum() / np.abs(exact).sum())
    assert np.mean(errors["new"]) < np.mean(errors["paper"])


def test_paper_estimator_still_available_and_options_validated() -> None:
    result = gtg_shapley(_game(6, seed=0), seed=1, sampling="guided", estimator="walk")
    assert result.method == "gtg" and result.permutations >= 30
    walk = gtg_shapley(_game(6, seed=0), seed=1, estimator="walk", epsilon=0.0)
    assert walk.values.sum() == pytest.approx(walk.full_utility - walk.empty_utility, abs=1e-9)
    with pytest.raises(ValueError, match="sampling"):
        gtg_shapley(_game(3), seed=0, sampling="sobol")
    with pytest.raises(ValueError, match="estimator"):
        gtg_shapley(_game(3), seed=0, estimator="kernel")
