"""Near-duplicate (FoolsGold-style) filter, median-referenced cosine filter, downdates, splits."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from aggregator.attacks import alie_z, little_is_enough, sybil_group
from aggregator.pipeline import RoundAggregator, build_pipeline
from aggregator.rules import CosineFilter, NearDuplicateFilter, RoundContext, UpdateBatch
from aggregator.rules.passes import combine_and_dots
from aggregator.simulation import powerlaw_split


def _honest(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    direction = rng.normal(size=d)
    return (direction + 1.0 * rng.normal(size=(n, d))).astype(np.float32)


def test_near_duplicate_drops_a_sybil_group_and_keeps_independent_owners() -> None:
    rng = np.random.default_rng(0)
    honest = _honest(rng, 7, 200)
    sybils = sybil_group(-honest[0], 3, rng)
    batch = UpdateBatch.from_updates(np.vstack([honest, sybils]))
    result = NearDuplicateFilter().apply(batch, RoundContext(tuple(f"s{i}" for i in range(10))))
    assert result.kept_mask.tolist() == [True] * 7 + [False] * 3


def test_median_reference_resists_a_heavy_minority_the_weighted_mean_does_not() -> None:
    rng = np.random.default_rng(1)
    honest = _honest(rng, 6, 300)
    flipped = -honest[:4] * 1.0
    updates = np.vstack([honest, flipped])
    sizes = np.array([10.0] * 6 + [60.0] * 4)  # the attackers claim most of the data
    ctx = RoundContext(tuple(f"s{i}" for i in range(10)), data_sizes=sizes)
    batch = UpdateBatch.from_updates(updates)
    robust = CosineFilter(reference="median").apply(batch, ctx).kept_mask
    weighted = CosineFilter().apply(batch, ctx).kept_mask
    assert robust.tolist() == [True] * 6 + [False] * 4
    assert not np.all(weighted[:6])  # the data-size-weighted mean was dragged towards the attackers


def test_sybil_group_has_zero_weight_every_round_and_leaves_within_k_rounds() -> None:
    rng = np.random.default_rng(2)
    spec = {
        "rules": [
            {"name": "near_duplicate"},
            {"name": "clip", "gamma": 1.0},
            {"name": "cosine", "reference": "median"},
        ],
        "reputation": "rffl",
    }
    server = RoundAggregator(build_pipeline(spec))
    senders = [f"s{i}" for i in range(10)]
    direction = rng.normal(size=100)
    removed_at = None
    for round_index in range(40):
        honest = (direction + rng.normal(size=(7, 100))).astype(np.float32)
        sybils = sybil_group(-direction, 3, rng)  # a colluding group pushing against the task
        outcome = server.run(np.vstack([honest, sybils]), senders, [100] * 10, seed=round_index)
        assert np.all(outcome.coefficients[7:] == 0.0)
        if removed_at is None and all(not server.is_active(s) for s in senders[7:]):
            removed_at = round_index
            break
    assert removed_at is not None and removed_at <= 25
    assert all(server.is_active(s) for s in senders[:7])


def _rounds_until_attackers_leave(
    rules: list[dict], make_updates: Callable[[np.random.Generator, int], np.ndarray], seed: int, rounds: int = 30
) -> tuple[RoundAggregator, list[str], int | None]:
    """Run RFFL rounds (α 0.95, β 1/3) over 7 honest owners and 3 attackers (rows 7-9) until the
    attackers have all left; the round they left in, or None."""
    rng = np.random.default_rng(seed)
    server = RoundAggregator(
        build_pipeline({"rules": rules, "reputation": {"name": "rffl", "alpha": 0.95, "beta": "1/3"}})
    )
    senders = [f"s{i}" for i in range(10)]
    for round_index in range(rounds):
        outcome = server.run(make_updates(rng, round_index), senders, [100] * 10, seed=round_index)
        assert np.all(outcome.coefficients[7:] == 0.0)  # dropped rows never enter the aggregate
        if all(not server.is_active(s) for s in senders[7:]):
            return server, senders, round_index
    return server, senders, None


def _alie_rounds(twin_score: str) -> tuple[RoundAggregator, list[str], int | None]:
    """7 honest owners, 3 sending the shared "little is enough" vector mean − z·std each round."""
    direction = np.random.default_rng(40).normal(size=100)

    def updates(rng: np.random.Generator, _: int) -> np.ndarray:
        honest = (direction + rng.normal(size=(7, 100))).astype(np.float32)
        return np.vstack([honest, np.repeat(little_is_enough(honest, alie_z(10, 3))[None, :], 3, axis=0)])

    rules = [{"name": "near_duplicate", "twin_score": twin_score}, {"name": "clip", "gamma": 1.0},
             {"name": "cosine", "reference": "median"}]  # fmt: skip
    return _rounds_until_attackers_leave(rules, updates, seed=4)


def _scaled_rounds(outlier_score: str) -> tuple[RoundAggregator, list[str], int | None]:
    """7 honest owners, 3 who train honestly and send 10× their update (RFFL's scaling attack)."""
    direction = np.random.default_rng(50).normal(size=100) / 10

    def updates(rng: np.random.Generator, _: int) -> np.ndarray:
        rows = (direction + 0.1 * rng.normal(size=(10, 100))).astype(np.float32)
        rows[7:] *= 10.0
        return rows

    boosted = {"name": "norm_outlier", "method": "ratio", "k": 2.0, "side": "upper", "outlier_score": outlier_score}
    rules = [{"name": "near_duplicate", "twin_score": "capped"}, boosted, {"name": "clip", "gamma": 1.0},
             {"name": "cosine", "reference": "median"}]  # fmt: skip
    return _rounds_until_attackers_leave(rules, updates, seed=5)


def _backdoor_rounds(outlier_score: str) -> tuple[RoundAggregator, list[str], int | None]:
    """7 honest owners, 3 who add one shared trigger component (a backdoor group) to their update."""
    shapes = np.random.default_rng(60)
    direction, trigger = shapes.normal(size=400), 2.5 * shapes.normal(size=400)

    def updates(rng: np.random.Generator, _: int) -> np.ndarray:
        rows = direction + 0.5 * rng.normal(size=(10, 400))
        rows[7:] += trigger
        return rows.astype(np.float32)

    rules = [{"name": "peer_support", "outlier_score": outlier_score}, {"name": "clip", "gamma": 1.0}]
    return _rounds_until_attackers_leave(rules, updates, seed=6)


@pytest.mark.parametrize("scenario", [_alie_rounds, _scaled_rounds, _backdoor_rounds])
def test_a_dropped_group_with_capped_scores_leaves_and_scored_by_cosine_stays(
    scenario: Callable[[str], tuple[RoundAggregator, list[str], int | None]],
) -> None:
    # capped: φ = 0 each round while honest owners score well above 0, so the group falls below β/|R|
    server, senders, removed_at = scenario("capped")
    assert removed_at is not None and removed_at <= 10
    assert all(server.is_active(s) for s in senders[:7])
    server, senders, removed_at = scenario("cosine")
    assert removed_at is None and all(server.is_active(s) for s in senders)


def test_a_little_is_enough_group_scored_by_cosine_outranks_every_honest_owner() -> None:
    server, senders, _ = _alie_rounds("cosine")
    # its vector sits near the honest mean, closer to the aggregate than any honest update
    reputations = dict(zip(server.rffl.state.participants, server.rffl.state.reputations, strict=True))
    assert min(reputations[s] for s in senders[7:]) > max(reputations[s] for s in senders[:7])


def test_a_backdoor_group_scored_by_cosine_keeps_reputation_above_the_threshold() -> None:
    server, _, _ = _backdoor_rounds("cosine")
    # dropped from every aggregate, it still scores its cosine to the honest one: under half an
    # honest owner's reputation, above β/|R|
    reputations = server.rffl.state.reputations
    assert max(reputations[7:]) < min(reputations[:7]) / 2


def test_near_duplicate_twin_score_is_checked() -> None:
    with pytest.raises(ValueError, match="twin_score"):
        NearDuplicateFilter(twin_score="zero")


def test_downdate_after_dropping_many_rows_equals_a_fresh_pass() -> None:
    rng = np.random.default_rng(3)
    updates = rng.normal(size=(12, 5000)).astype(np.float32)
    batch = UpdateBatch.from_updates(updates)
    weights = np.full(12, 1 / 12)
    batch.combine_and_dots(weights)
    kept = np.ones(12, dtype=bool)
    kept[[0, 3, 4, 7, 9]] = False
    aggregate, dots = batch.derive(kept=kept).combine_and_dots(weights)
    fresh_aggregate, fresh_dots = combine_and_dots(updates, np.where(kept, weights, 0.0))
    np.testing.assert_allclose(aggregate, fresh_aggregate, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dots, fresh_dots, rtol=1e-4, atol=1e-3)


def test_powerlaw_split_is_a_partition_with_decreasing_sizes() -> None:
    labels = np.arange(1000) % 10
    parts = powerlaw_split(labels, 10, 1.0, seed=0)
    sizes = [len(p) for p in parts]
    assert sum(sizes) == 1000 and len(np.unique(np.concatenate(parts))) == 1000
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 5 * sizes[-1]
