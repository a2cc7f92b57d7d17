"""Robust rules: clipping bounds norms, filters and robust aggregates resist outliers, spec checks."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.pipeline import PipelineSpecError, build_pipeline
from aggregator.rules import (
    CoordinateMedian,
    CosineFilter,
    MultiKrum,
    NormClip,
    NormOutlierFilter,
    RoundContext,
    TrimmedMean,
    UpdateBatch,
)
from aggregator.rules.norm_outlier import norm_outlier_mask
from aggregator.rules.passes import combine_and_dots, row_squared_norms


def _honest_plus_outlier(seed: int = 0, n_honest: int = 8, d: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    honest = direction + 0.3 * rng.normal(size=(n_honest, d))
    outlier = -100.0 * direction
    return np.vstack([honest, outlier]).astype(np.float32), direction


def _ctx(n: int) -> RoundContext:
    return RoundContext(senders=tuple(f"s{i}" for i in range(n)), expected_attackers=1)


def test_clip_bounds_every_effective_norm() -> None:
    updates, _ = _honest_plus_outlier()
    batch = UpdateBatch.from_updates(updates)
    result = NormClip(gamma=0.5).apply(batch, _ctx(batch.n))
    clipped = batch.derive(scale=result.scale)
    assert np.all(clipped.effective_norms() <= 0.5 + 1e-6)
    small = UpdateBatch.from_updates(updates * 1e-4)
    assert np.all(NormClip(gamma=0.5).apply(small, _ctx(small.n)).scale == 1.0)
    with pytest.raises(ValueError):
        NormClip(gamma=0.0)


@pytest.mark.parametrize("rule", [CoordinateMedian(), TrimmedMean(beta=0.2)])
def test_coordinate_rules_resist_a_scaled_outlier(rule) -> None:
    updates, direction = _honest_plus_outlier()
    batch = UpdateBatch.from_updates(updates)
    aggregate = rule.apply(batch, _ctx(batch.n)).aggregate
    assert aggregate is not None
    mean = updates.mean(axis=0)
    assert np.dot(aggregate, direction) > 0 > np.dot(mean, direction)


def test_krum_drops_the_outlier() -> None:
    updates, _ = _honest_plus_outlier()
    batch = UpdateBatch.from_updates(updates)
    result = MultiKrum().apply(batch, _ctx(batch.n))
    assert not result.kept_mask[-1] and result.kept_mask[:-1].all()
    single = MultiKrum(f=1, keep=1).apply(batch, _ctx(batch.n))
    assert single.kept_mask.sum() == 1 and not single.kept_mask[-1]


def test_norm_outlier_filter_both_methods() -> None:
    updates, _ = _honest_plus_outlier()
    batch = UpdateBatch.from_updates(updates)
    for method, k in (("mad", 10.0), ("sigma", 2.5)):  # 8 near-equal norms: MAD is tiny, σ is inflated
        kept = NormOutlierFilter(method=method, k=k, side="upper").apply(batch, _ctx(batch.n)).kept_mask
        assert not kept[-1] and kept[:-1].all()


def test_norm_outlier_ratio_method_keeps_norms_within_k_times_the_median() -> None:
    norms = np.array([1.0, 1.1, 0.9, 1.2, 2.5, 0.3])
    assert norm_outlier_mask(norms, "ratio", 2.0, "upper").tolist() == [True] * 4 + [False, True]
    assert norm_outlier_mask(norms, "ratio", 2.0, "lower").tolist() == [True] * 5 + [False]
    assert norm_outlier_mask(norms, "ratio", 2.0, "both").tolist() == [True] * 4 + [False, False]
    updates, _ = _honest_plus_outlier()
    batch = UpdateBatch.from_updates(updates)
    result = NormOutlierFilter(method="ratio", k=3.0, side="upper", outlier_score="capped").apply(batch, _ctx(batch.n))
    assert result.kept_mask.tolist() == [True] * 8 + [False]
    assert result.capped is not None and result.capped.tolist() == [False] * 8 + [True]
    assert NormOutlierFilter(method="ratio", k=3.0).apply(batch, _ctx(batch.n)).capped is None


def test_norm_outlier_size_exponent_judges_a_long_update_by_the_data_behind_it() -> None:
    # owner 0 holds 16 × the median's rows and, training more steps, sends a 3.5 × longer update; owner 5 is
    # boosted 10 × with a median share of the data
    rng = np.random.default_rng(4)
    rows = rng.normal(size=(6, 50))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    rows[0] *= 3.5
    rows[5] *= 10.0
    batch = UpdateBatch.from_updates(rows.astype(np.float32))
    ctx = RoundContext(tuple(f"s{i}" for i in range(6)), data_sizes=np.array([1600, 100, 100, 100, 100, 100.0]))
    plain = NormOutlierFilter(method="ratio", k=3.0, side="upper").apply(batch, ctx).kept_mask
    sized = NormOutlierFilter(method="ratio", k=3.0, side="upper", size_exponent=0.5).apply(batch, ctx).kept_mask
    assert plain.tolist() == [False, True, True, True, True, False]
    assert sized.tolist() == [True, True, True, True, True, False]
    with pytest.raises(ValueError, match="data sizes"):
        NormOutlierFilter(method="ratio", size_exponent=0.5).apply(batch, _ctx(6))
    zero = RoundContext(ctx.senders, data_sizes=np.array([0, 100, 100, 100, 100, 100.0]))
    with pytest.raises(ValueError, match="positive data size"):
        NormOutlierFilter(method="ratio", size_exponent=0.5).apply(batch, zero)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "ratio", "k": 1.0}, "exceed 1"),
        ({"outlier_score": "zero"}, "outlier_score"),
        ({"method": "x"}, "method"),
        ({"size_exponent": 1.5}, "size_exponent"),
    ],
)
def test_norm_outlier_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NormOutlierFilter(**options)


def test_cosine_filter_drops_sign_flipper_after_clipping() -> None:
    updates, _ = _honest_plus_outlier()
    batch = UpdateBatch.from_updates(updates)
    clipped = batch.derive(scale=NormClip(gamma=1.0).apply(batch, _ctx(batch.n)).scale)
    result = CosineFilter(threshold=0.0).apply(clipped, _ctx(batch.n))
    assert not result.kept_mask[-1] and result.kept_mask[:-1].all()


@pytest.mark.parametrize("shape", [(5, 40_000), (8, 600_000)])  # single-threaded and threaded paths
def test_fused_pass_matches_plain_numpy(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    updates = rng.normal(size=shape).astype(np.float32)
    weights = rng.random(shape[0])
    aggregate, dots = combine_and_dots(updates, weights)
    expected = weights.astype(np.float32) @ updates
    np.testing.assert_allclose(aggregate, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dots, updates.astype(np.float64) @ expected.astype(np.float64), rtol=1e-4)
    np.testing.assert_allclose(row_squared_norms(updates), (updates.astype(np.float64) ** 2).sum(1), rtol=1e-5)


def test_pipeline_runs_rules_in_order_and_shares_mask() -> None:
    updates, _ = _honest_plus_outlier()
    pipeline = build_pipeline(
        {
            "rules": [{"name": "norm_outlier"}, {"name": "clip", "gamma": 1.0}, {"name": "cosine"}],
            "reputation": "rffl",
            "contribution": "shapley",
        }
    )
    outcome = pipeline.filter(UpdateBatch.from_updates(updates), _ctx(len(updates)))
    assert not outcome.batch.kept[-1]
    assert [name for name, _ in outcome.notes] == ["norm_outlier", "clip", "cosine"]
    assert build_pipeline(pipeline.to_dict()).to_dict() == pipeline.to_dict()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rules": [{"name": "nope"}]}, "unknown rules"),
        ({"rules": [{"name": "clip"}]}, "gamma"),
        ({"rules": [{"name": "clip", "gamma": -1}]}, "positive"),
        ({"rules": [{"name": "clip", "gamma": 1, "extra": 2}]}, "unknown field"),
        ({"rules": [{"name": "median"}, {"name": "clip", "gamma": 1}]}, "must come last"),
        ({"rules": [{"name": "median"}], "reputation": "rffl"}, "reputation 'none'"),
        ({"reputation": {"name": "rffl", "alpha": 1.5}}, "alpha"),
        ({"contribution": {"name": "shapley", "method": "guess"}}, "method"),
        ({"contribution": {"name": "shapley", "epsilon": "x"}}, "epsilon"),
        ({"rules": "clip"}, "must be a list"),
        ({"colour": 1}, "unknown aggregation spec"),
    ],
)
def test_pipeline_spec_errors_name_the_problem(spec, message) -> None:
    with pytest.raises(PipelineSpecError, match=message):
        build_pipeline(spec)


def test_downdated_combination_equals_fresh_pass() -> None:
    rng = np.random.default_rng(4)
    updates = rng.normal(size=(9, 3000)).astype(np.float32)
    weights = rng.random(9)
    batch = UpdateBatch.from_updates(updates)
    batch.combine_and_dots(weights)
    kept = np.ones(9, dtype=bool)
    kept[[2, 5]] = False
    downdated = batch.derive(kept=kept).combine_and_dots(weights)
    fresh = UpdateBatch.from_updates(updates, kept=kept).combine_and_dots(weights)
    np.testing.assert_allclose(downdated[0], fresh[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(downdated[1], fresh[1], rtol=1e-4, atol=1e-4)
