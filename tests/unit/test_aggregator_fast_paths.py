"""The aggregation fast paths agree with straightforward float64 computations on small inputs.

Covers the row-sequential norm/dot pass (four rows side by side, every remainder), the fused
pass (no copies of the data; float64 rows summed in float64), the speculative fused pass that
prepares a cosine filter's downdate, the blocked Gram matrix, the coordinate median (against
numpy's, bit for bit), the blocked trimmed mean (against a sorted copy), the one-pass float
validation, and a whole round against a plain reference.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from aggregator.pipeline import RoundAggregator, build_pipeline
from aggregator.rules import CosineFilter, NormClip, RoundContext, UpdateBatch, passes
from aggregator.rules.passes import (
    combine_and_dots,
    combine_and_dots_speculating,
    combine_rows,
    coordinate_median,
    coordinate_trimmed_mean,
    gram_matrix,
    row_dots,
    row_squared_norms,
)
from aggregator.validation import validate_float_stack


def _attacked(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Honest rows around a shared direction; 10% sign-flipped, 5% scaled ×10 (the benchmark's mix)."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(d) / np.sqrt(d)
    updates = (direction + rng.standard_normal((n, d)) / np.sqrt(d)).astype(np.float32)
    updates[: n // 10] *= -1.0
    updates[n // 10 : n // 10 + n // 20] *= 10.0
    return updates


@pytest.mark.parametrize("shape", [(5, 3_500), (8, 600_000)])  # single-threaded and threaded paths
def test_row_dots_match_float64(shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    if shape[1] < 10_000:
        monkeypatch.setattr(passes, "ROW_CHUNK_COLUMNS", 1_000)  # several chunks and a short last one
    rng = np.random.default_rng(1)
    updates = rng.normal(size=shape).astype(np.float32)
    vector = rng.normal(size=shape[1]).astype(np.float32)
    exact = updates.astype(np.float64)
    np.testing.assert_allclose(row_squared_norms(updates), (exact**2).sum(1), rtol=1e-6)
    np.testing.assert_allclose(row_dots(updates, vector), exact @ vector.astype(np.float64), rtol=1e-4, atol=1e-3)
    # each row against its own other (the consistency rule's pass); a float64 other is converted to float32
    others = [(0.7 * row + rng.normal(size=shape[1])).astype(np.float32) for row in updates]
    others[0] = others[0].astype(np.float64)
    paired = [(row @ other.astype(np.float64), (other.astype(np.float64) ** 2).sum())
              for row, other in zip(exact, others, strict=True)]  # fmt: skip
    np.testing.assert_allclose(passes.paired_dots(list(updates), others), paired, rtol=1e-5)
    as_float64 = row_squared_norms(exact)
    np.testing.assert_allclose(as_float64, (exact**2).sum(1), rtol=1e-12)
    integers = np.arange(12, dtype=np.int64).reshape(3, 4)
    np.testing.assert_array_equal(row_squared_norms(integers), (integers.astype(np.float64) ** 2).sum(1))


@pytest.mark.parametrize("n", [1, 3, 6, 7, 9])  # four-row groups and every remainder
def test_row_dots_by_four_rows_and_over_a_column_range(n: int) -> None:
    rng = np.random.default_rng(10 + n)
    updates = rng.normal(size=(n, 2_000)).astype(np.float32)
    vector = rng.normal(size=2_000).astype(np.float32)
    exact = updates.astype(np.float64)
    np.testing.assert_allclose(row_squared_norms(updates), (exact**2).sum(1), rtol=1e-6)
    np.testing.assert_allclose(row_dots(updates, vector), exact @ vector, rtol=1e-4, atol=1e-3)
    part = exact[:, 300:1_100]
    np.testing.assert_allclose(row_dots(updates, columns=(300, 1_100)), (part**2).sum(1), rtol=1e-6)
    np.testing.assert_allclose(
        row_dots(updates, vector, columns=(300, 1_100)), part @ vector[300:1_100], rtol=1e-4, atol=1e-3
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [5, 11])
def test_fused_pass_with_zero_coefficients_and_odd_row_counts(n: int, dtype: type) -> None:
    rng = np.random.default_rng(20 + n)
    updates = rng.normal(size=(n, 3_001)).astype(dtype)
    coefficients = rng.random(n)
    coefficients[[1, n - 2]] = 0.0  # rows that never enter u but still get their dots
    aggregate, dots = combine_and_dots(updates, coefficients)
    exact = updates.astype(np.float64)
    u = coefficients @ exact
    tolerance = 1e-12 if dtype is np.float64 else 1e-5  # float64 rows are summed in float64
    assert aggregate.dtype == dtype
    np.testing.assert_allclose(aggregate, u, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(dots, exact @ u, rtol=tolerance, atol=tolerance * 100)
    chosen = np.array([0, 2, n - 1])
    downdate = combine_rows(updates, coefficients, chosen)
    np.testing.assert_allclose(downdate, coefficients[chosen] @ exact[chosen], rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [1, 2, 3, 4, 7, 10, 33, 100])
def test_coordinate_median_equals_numpys_median_of_the_scaled_rows(m: int, dtype: type) -> None:
    rng = np.random.default_rng(30 + m)
    updates = rng.normal(size=(m + 3, 5_000)).astype(dtype)
    updates[:, :50] = np.round(updates[:, :50])  # ties
    updates[:, 60] = 0.25  # a constant column
    rows = np.sort(rng.choice(m + 3, size=m, replace=False))
    scale = rng.uniform(0.2, 1.0, size=m)
    expected = np.median(updates[rows] * scale[:, None].astype(dtype), axis=0)
    median = coordinate_median(updates, rows, scale)
    assert median.dtype == expected.dtype
    np.testing.assert_array_equal(median, expected)  # bit for bit: the even case's mean in the data's dtype


def _sorted_trimmed_mean(rows: np.ndarray, cut: int) -> np.ndarray:
    """The reference: sort a copy of the rows per column and average the middle in float64."""
    m = rows.shape[0]
    return np.sort(rows, axis=0)[cut : m - cut].mean(axis=0, dtype=np.float64).astype(rows.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("m", "cut"), [(1, 0), (2, 0), (3, 1), (4, 1), (7, 2), (10, 1), (33, 3), (100, 10), (9, 4)])
def test_coordinate_trimmed_mean_equals_the_sorted_copys(m: int, cut: int, dtype: type) -> None:
    rng = np.random.default_rng(60 + m)
    updates = rng.normal(size=(m + 3, 5_000)).astype(dtype)
    updates[:, :50] = np.round(updates[:, :50])  # ties
    updates[: m // 3 + 1, 100:200] *= 1e4  # outliers the trim must remove
    rows = np.sort(rng.choice(m + 3, size=m, replace=False))
    scale = rng.uniform(0.2, 1.0, size=m)
    expected = _sorted_trimmed_mean(updates[rows] * scale[:, None].astype(dtype), cut)
    trimmed = coordinate_trimmed_mean(updates, rows, scale, cut)
    assert trimmed.dtype == expected.dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-12  # the float64 sum's order differs from numpy's
    np.testing.assert_allclose(trimmed, expected, rtol=rtol, atol=rtol * 1e-3)


def test_coordinate_trimmed_mean_sorts_nan_last_as_numpy_does() -> None:
    updates = np.arange(40, dtype=np.float32).reshape(5, 8)
    updates[1, 2] = np.nan  # one NaN: trimmed away with cut = 1
    updates[[0, 3], 5] = np.nan  # two NaNs: one stays in the middle
    updates[4, 6] = np.inf
    for cut in (0, 1, 2):
        np.testing.assert_array_equal(coordinate_trimmed_mean(updates, np.arange(5), np.ones(5), cut),
                                      _sorted_trimmed_mean(updates, cut))  # fmt: skip
    with pytest.raises(ValueError, match="cannot trim 3"):
        coordinate_trimmed_mean(updates, np.arange(5), np.ones(5), 3)


def test_coordinate_median_of_a_non_finite_column_and_of_no_rows() -> None:
    updates = np.arange(24, dtype=np.float32).reshape(4, 6)
    updates[2, 3] = np.nan
    median = coordinate_median(updates, np.arange(4), np.ones(4))
    assert np.isnan(median[3]) and np.isfinite(np.delete(median, 3)).all()
    assert np.isnan(coordinate_median(updates, np.zeros(0, dtype=np.int64), np.zeros(0))).all()


def test_paired_dots_refuse_unequal_rows_and_propagate_nan() -> None:
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(2, 50)).astype(np.float32)
    others = list(rng.normal(size=(2, 50)).astype(np.float32))
    assert passes.paired_dots([], []).shape == (0, 2)
    with pytest.raises(ValueError, match="shapes"):
        passes.paired_dots([rows[0]], [others[1][:-1]])
    nan = rows[1].copy()
    nan[5] = np.nan
    assert np.isnan(passes.paired_dots([rows[0]], [nan])).all()


def test_copy_rows_fills_the_targets_in_place() -> None:
    rng = np.random.default_rng(3)
    sources = list(rng.normal(size=(5, 300_000)).astype(np.float32))
    targets = [np.zeros(300_000, dtype=np.float32) for _ in sources]
    held = [t for t in targets]
    passes.copy_rows(sources, targets)
    for source, target, same in zip(sources, targets, held, strict=True):
        assert target is same
        np.testing.assert_array_equal(target, source)


def test_row_dots_propagate_nan_and_inf() -> None:
    updates = np.ones((3, 50), dtype=np.float32)
    updates[1, 7] = np.nan
    updates[2, 9] = -np.inf
    squared = row_squared_norms(updates)
    assert squared[0] == 50.0 and np.isnan(squared[1]) and squared[2] == np.inf


def test_fused_and_row_passes_copy_no_data() -> None:
    rng = np.random.default_rng(2)
    updates = rng.normal(size=(8, 600_000)).astype(np.float32)  # 19 MB, threaded path
    weights = rng.random(8)
    combine_and_dots(updates, weights)  # warm up the pool
    peaks = []
    for work in (lambda: combine_and_dots(updates, weights), lambda: row_squared_norms(updates)):
        tracemalloc.start()
        try:
            work()
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    # the aggregate (2.4 MB) plus per-part vectors: a copied chunk of rows (a strided slice handed
    # to np.dot, or a float64 copy of a float32 chunk: ≥ 8 × 8192 × 4 B = 256 KiB) would show
    assert peaks[0] < updates.shape[1] * 4 + 65_536
    assert peaks[1] < 65_536


def test_speculative_pass_matches_two_fresh_passes() -> None:
    updates = _attacked(40, 50_000)
    rng = np.random.default_rng(3)
    coefficients = rng.random(40) / 40
    coefficients[[5, 30]] = 0.0  # already filtered rows are never "predicted"
    (aggregate, dots), speculative = combine_and_dots_speculating(updates, coefficients, 0.0)
    fresh_aggregate, fresh_dots = combine_and_dots(updates, coefficients)
    np.testing.assert_allclose(aggregate, fresh_aggregate, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dots, fresh_dots, rtol=1e-5, atol=1e-6)
    assert speculative is not None
    without, aggregate_without, dots_without = speculative
    assert np.flatnonzero((coefficients != 0) & (without == 0)).tolist() == [0, 1, 2, 3]  # the sign flippers
    reference = np.where(np.isin(np.arange(40), [0, 1, 2, 3]), 0.0, coefficients)
    np.testing.assert_array_equal(without, reference)
    u = reference @ updates.astype(np.float64)
    np.testing.assert_allclose(aggregate_without, u, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dots_without, updates.astype(np.float64) @ u, rtol=1e-4, atol=1e-6)


def test_speculation_predicts_nothing_on_a_clean_round() -> None:
    updates = _attacked(40, 50_000)[8:]  # no flipped rows left
    (aggregate, dots), speculative = combine_and_dots_speculating(updates, np.full(32, 1 / 32), 0.0)
    assert speculative is None
    fresh = combine_and_dots(updates, np.full(32, 1 / 32))
    np.testing.assert_allclose(aggregate, fresh[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dots, fresh[1], rtol=1e-5, atol=1e-6)


def _cosine_then_reputation(updates: np.ndarray, later_kept: np.ndarray | None = None):
    n = updates.shape[0]
    weights = np.linspace(1.0, 2.0, n) / n
    ctx = RoundContext(tuple(f"s{i}" for i in range(n)), reference_weights=weights)
    batch = UpdateBatch.from_updates(updates)
    batch = batch.derive(scale=NormClip(gamma=1.0).apply(batch, ctx).scale)
    result = CosineFilter(threshold=0.0).apply(batch, ctx)
    filtered = batch.derive(kept=result.kept_mask if later_kept is None else later_kept)
    return filtered, weights, filtered.combine_and_dots(np.where(filtered.kept, weights, 0.0))


def test_cosine_filter_prepares_the_reputation_combination(monkeypatch: pytest.MonkeyPatch) -> None:
    updates = _attacked(40, 50_000)
    calls: list[int] = []
    original = passes.row_dots
    monkeypatch.setattr(passes, "row_dots", lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    filtered, weights, (aggregate, dots) = _cosine_then_reputation(updates)
    assert filtered.kept[:4].tolist() == [False] * 4 and filtered.kept[4:].all()
    assert len(calls) == 2  # the clip's norms and the probe's norms: no downdate pass over the data
    fresh = UpdateBatch.from_updates(updates, kept=filtered.kept).derive(scale=filtered.scale)
    coefficients = fresh.effective_coefficients(np.where(filtered.kept, weights, 0.0))
    u = coefficients @ updates.astype(np.float64)
    np.testing.assert_allclose(aggregate, u, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dots, updates.astype(np.float64) @ u, rtol=1e-4, atol=1e-6)


def test_the_reputation_takes_its_aggregate_out_of_the_cache_before_scaling_it() -> None:
    from aggregator.reputation import RFFLReputation

    updates = _attacked(40, 50_000)
    filtered, _, _ = _cosine_then_reputation(updates)
    senders = [f"s{i}" for i in range(40)]
    reputation = RFFLReputation()
    reputation.start(senders)
    result = reputation.step(filtered, senders, [100] * 40)  # round 0: weights are data shares, 1/40 each
    shares = np.where(filtered.kept, 1 / 40, 0.0)
    u = filtered.effective_coefficients(shares) @ updates.astype(np.float64)
    np.testing.assert_allclose(result.aggregate, u / shares.sum(), rtol=1e-4, atol=1e-8)
    # the batch's combination with those weights was not scaled with it: asking again gives u itself
    again, _ = filtered.combine_and_dots(shares)
    np.testing.assert_allclose(again, u, rtol=1e-4, atol=1e-7)
    assert not np.shares_memory(again, result.aggregate)


def test_a_wrong_prediction_falls_back_to_an_exact_downdate() -> None:
    updates = _attacked(40, 50_000)
    kept = np.ones(40, dtype=bool)
    kept[[0, 1, 17, 33]] = False  # not what the cosine filter dropped
    filtered, weights, (aggregate, dots) = _cosine_then_reputation(updates, later_kept=kept)
    coefficients = filtered.effective_coefficients(np.where(kept, weights, 0.0))
    u = coefficients @ updates.astype(np.float64)
    np.testing.assert_allclose(aggregate, u, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dots, updates.astype(np.float64) @ u, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("index", [[0, 1, 2, 3, 4, 5], [1, 4, 5, 9], [], [3]])
def test_gram_matrix_matches_float64(index: list[int]) -> None:
    rng = np.random.default_rng(4)
    updates = rng.normal(size=(10, 20_000)).astype(np.float32)
    rows = updates[index].astype(np.float64)
    np.testing.assert_allclose(
        gram_matrix(updates, np.array(index, dtype=np.int64)), rows @ rows.T, rtol=1e-5, atol=1e-2
    )


def _reference_validation(updates: np.ndarray, max_norm: float, max_abs: float | None) -> np.ndarray:
    exact = updates.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(exact).all(axis=1)
        norms = np.sqrt((np.where(np.isfinite(exact), exact, 0.0) ** 2).sum(axis=1))
        peaks = np.abs(np.where(np.isfinite(exact), exact, 0.0)).max(axis=1)
    valid = finite & (norms <= max_norm)
    return valid if max_abs is None else valid & (peaks <= max_abs)


@pytest.mark.parametrize("shape", [(12, 40), (8, 600_000)])
def test_float_validation_matches_a_plain_check_with_reasons(shape: tuple[int, int]) -> None:
    n, d = shape
    rng = np.random.default_rng(5)
    updates = (rng.normal(size=shape) * 0.5 / np.sqrt(d)).astype(np.float32)  # norms ≈ 0.5
    updates[1, 3] = np.nan
    updates[2, 0] = np.inf
    updates[3] *= 100.0  # norm ≈ 50 > max_norm
    updates[4, 5] = 3.0  # norm ≈ 3 ≤ max_norm, one value above max_abs
    updates[5, 6] = 1.9  # norm ≈ 2 > max_abs, every value within it: scanned, kept
    updates[6] = 1e30  # finite, but Σx² overflows float32
    updates[7, 1] = -2.5  # a negative value beyond max_abs
    senders = [f"s{i}" for i in range(n)]
    outcome = validate_float_stack(updates, senders, dimension=d, max_norm=10.0, max_abs=2.0)
    expected = _reference_validation(updates, 10.0, 2.0)
    assert outcome.valid.tolist() == expected.tolist()
    assert expected[:8].tolist() == [True, False, False, False, False, True, False, False]
    reasons = {r.sender: r.reason for r in outcome.rejections}
    assert set(reasons) == {s for s, ok in zip(senders, expected, strict=True) if not ok}
    assert "non-finite" in reasons["s1"] and "non-finite" in reasons["s2"]
    assert "norm" in reasons["s3"] and "norm" in reasons["s6"]
    assert "magnitude 3" in reasons["s4"] and "magnitude 2.5" in reasons["s7"]
    without_range = validate_float_stack(updates, senders, dimension=d, max_norm=10.0)
    assert without_range.valid.tolist() == _reference_validation(updates, 10.0, None).tolist()
    np.testing.assert_allclose(outcome.squared_norms[0], (updates[0].astype(np.float64) ** 2).sum(), rtol=1e-6)


def test_float_validation_range_check_on_random_rows_near_the_bounds() -> None:
    rng = np.random.default_rng(6)
    updates = rng.normal(size=(200, 30)).astype(np.float32)
    updates *= rng.uniform(0.2, 3.0, size=(200, 1)).astype(np.float32)
    for max_abs in (0.5, 1.0, 2.0, 4.0):
        outcome = validate_float_stack(
            updates, [f"s{i}" for i in range(200)], dimension=30, max_norm=12.0, max_abs=max_abs
        )
        assert outcome.valid.tolist() == _reference_validation(updates, 12.0, max_abs).tolist()
        assert len(outcome.rejections) == int((~outcome.valid).sum())


def test_whole_round_matches_a_plain_float64_reference() -> None:
    n, d = 40, 50_000
    updates = _attacked(n, d, seed=7)
    senders = [f"s{i}" for i in range(n)]
    sizes = [100 + (i % 7) * 10 for i in range(n)]
    spec = {
        "rules": [
            {"name": "norm_outlier", "method": "mad", "k": 3.0, "side": "upper"},
            {"name": "clip", "gamma": 1.0},
            {"name": "cosine", "threshold": 0.0},
        ],
        "reputation": "rffl",
    }
    outcome = RoundAggregator(build_pipeline(spec)).run(updates, senders, sizes)

    exact = updates.astype(np.float64)
    norms = np.linalg.norm(exact, axis=1)
    median = np.median(norms)
    kept = norms <= median + 3.0 * 1.4826 * np.median(np.abs(norms - median))
    scale = np.minimum(1.0, 1.0 / norms)
    shares = np.asarray(sizes, dtype=np.float64) / sum(sizes)
    u = (np.where(kept, shares * scale, 0.0)) @ exact
    cosines = exact @ u / (norms * np.linalg.norm(u))
    kept &= cosines >= 0.0
    weights = np.where(kept, shares, 0.0)
    u = (weights * scale) @ exact / weights.sum()
    phis = exact @ u / (norms * np.linalg.norm(u))

    assert outcome.kept.tolist() == kept.tolist()
    assert kept[:4].tolist() == [False] * 4 and kept[4:6].tolist() == [False] * 2 and kept[6:].all()
    np.testing.assert_allclose(outcome.aggregate, u, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose([outcome.phis[s] for s in senders], phis, rtol=1e-4, atol=1e-6)


def test_a_rejected_non_finite_row_does_not_poison_the_aggregate() -> None:
    updates = _attacked(40, 50_000)
    updates[20, 123] = np.nan  # rejected by validation but still a row of the matrix
    updates[31, 40_000] = np.inf
    outcome = validate_float_stack(updates, [f"s{i}" for i in range(40)], dimension=50_000, max_norm=100.0)
    assert np.flatnonzero(~outcome.valid).tolist() == [20, 31]
    coefficients = np.where(outcome.valid, 1 / 38, 0.0)
    finite = np.where(np.isfinite(updates), updates, 0.0).astype(np.float64)
    u = coefficients @ finite
    for aggregate, dots in (
        combine_and_dots(updates, coefficients),
        combine_and_dots_speculating(updates, coefficients, 0.0)[0],
    ):
        np.testing.assert_allclose(aggregate, u, rtol=1e-4, atol=1e-7)
        keep = outcome.valid
        np.testing.assert_allclose(dots[keep], finite[keep] @ u, rtol=1e-4, atol=1e-6)
        assert not np.isfinite(dots[20]) and not np.isfinite(dots[31])


def test_whole_round_with_a_nan_row_rejected_by_validation() -> None:
    n, d = 40, 50_000
    updates = _attacked(n, d, seed=8)
    updates[25, 7] = np.nan
    senders = [f"s{i}" for i in range(n)]
    sizes = [100] * n
    check = validate_float_stack(updates, senders, dimension=d, max_norm=100.0)
    assert "non-finite" in check.rejections[0].reason and check.rejections[0].sender == "s25"
    spec = {"rules": [{"name": "clip", "gamma": 1.0}, {"name": "cosine", "threshold": 0.0}], "reputation": "rffl"}
    pipeline = build_pipeline(spec)
    from aggregator.reputation import RFFLReputation

    reputation = RFFLReputation()
    reputation.start(senders)
    batch = UpdateBatch.from_updates(updates, kept=check.valid)
    batch.cache.raw_sq_norms = check.squared_norms
    ctx = RoundContext(tuple(senders), np.asarray(sizes, dtype=np.float64), reputation.base_weights(senders, sizes))
    result = reputation.step(pipeline.filter(batch, ctx).batch, senders, sizes)
    assert np.all(np.isfinite(result.aggregate))
    exact = np.where(np.isfinite(updates), updates, 0.0).astype(np.float64)
    norms = np.linalg.norm(exact, axis=1)
    kept = check.valid & (exact @ (np.where(check.valid, np.minimum(1.0, 1.0 / norms), 0.0) @ exact) >= 0.0)
    u = np.where(kept, np.minimum(1.0, 1.0 / norms), 0.0) @ exact / kept.sum()
    np.testing.assert_allclose(result.aggregate, u, rtol=1e-4, atol=1e-7)


def test_float_validation_judges_an_overflowing_float32_norm_in_float64() -> None:
    updates = np.ones((3, 8), dtype=np.float32)
    updates[1] = 1e25  # Σx² = 8e50 overflows float32 but the norm (2.8e25) is within a huge bound
    updates[2] = 1e30
    outcome = validate_float_stack(updates, ["a", "b", "c"], dimension=8, max_norm=1e28)
    assert outcome.valid.tolist() == [True, True, False]
    np.testing.assert_allclose(outcome.squared_norms[1], 8e50, rtol=1e-6)
    assert [r.sender for r in outcome.rejections] == ["c"] and "norm 2.82843e+30" in outcome.rejections[0].reason
