"""Input-feature outlier filter: an update that trains on input features the round's others leave alone is dropped."""

from __future__ import annotations

import numpy as np
import pytest
from grid_cell import replay_cell

from aggregator.pipeline import PipelineSpecError, build_pipeline
from aggregator.protocol import filter_pipeline
from aggregator.rules import FeatureOutlierFilter, RoundContext, UpdateBatch
from aggregator.rules.feature_outlier import feature_scores, feature_shares
from marketplace.errors import FedmarketError
from marketplace.models import ModelSpec
from marketplace.task_spec import ProtocolSpec

INPUTS, UNITS, TAIL = 12, 5, 7  # a 5 × 12 first layer, then 7 other parameters


def _context(n: int) -> RoundContext:
    return RoundContext(tuple(f"s{i}" for i in range(n)))


def _round(rng: np.random.Generator, n: int = 10, stamped: tuple[int, ...] = (8, 9)) -> np.ndarray:
    """Honest rows train on features 0-9 along a shared pattern, each with its own noise (features 10 and 11 are
    blank in their data); `stamped` rows also move feature 11's column, as a trigger stamped there would."""
    first = rng.normal(size=(UNITS, INPUTS)) + 0.3 * rng.normal(size=(n, UNITS, INPUTS))
    first[:, :, 10:] = 0.0
    for row in stamped:
        column = rng.normal(size=UNITS)
        first[row, :, 11] = 2.0 * np.sqrt(UNITS) * column / np.linalg.norm(column)  # twice a typical column's norm
    return np.concatenate([first.reshape(n, -1), rng.normal(size=(n, TAIL))], axis=1).astype(np.float32)


def test_shares_are_each_features_column_norm_over_the_row_norm() -> None:
    rows = np.zeros((2, UNITS * INPUTS + TAIL))
    rows[0, [0, INPUTS]] = 3.0, 4.0  # feature 0's column is (3, 4, 0, 0, 0)
    rows[0, -1] = 5.0
    first = rows[:, : UNITS * INPUTS].reshape(2, UNITS, INPUTS)
    shares = feature_shares(first, np.linalg.norm(rows, axis=1))
    assert shares[0, 0] == pytest.approx(5.0 / np.sqrt(50.0)) and shares[0, 1:].sum() == 0.0
    assert not shares[1].any()  # a zero row shares nothing and divides by nothing


def test_rows_that_move_a_feature_nobody_else_does_are_dropped() -> None:
    batch = UpdateBatch.from_updates(_round(np.random.default_rng(0)))
    result = FeatureOutlierFilter(inputs=INPUTS, units=UNITS, k=8.0).apply(batch, _context(10))
    assert result.kept_mask.tolist() == [True] * 8 + [False] * 2
    assert result.notes["dropped"] == 2 and result.capped is None
    assert result.notes["feature"][8:] == [11, 11]
    scores = np.array(result.notes["feature_score"])
    assert scores[8:].min() > 8.0 > scores[:8].max()


def test_the_score_ignores_an_updates_length_and_capped_drops_are_flagged() -> None:
    rows = _round(np.random.default_rng(1))
    rule = FeatureOutlierFilter(inputs=INPUTS, units=UNITS, outlier_score="capped")
    plain = rule.apply(UpdateBatch.from_updates(rows), _context(10))
    rows[8] *= 10.0
    rows[3] *= 0.1
    rescaled = rule.apply(UpdateBatch.from_updates(rows), _context(10))
    np.testing.assert_allclose(rescaled.notes["feature_score"], plain.notes["feature_score"], rtol=1e-4)
    assert rescaled.capped is not None and rescaled.capped.tolist() == [False] * 8 + [True] * 2


def test_an_honest_round_keeps_everyone_and_small_rounds_are_left_alone() -> None:
    rule = FeatureOutlierFilter(inputs=INPUTS, units=UNITS)
    honest = UpdateBatch.from_updates(_round(np.random.default_rng(2), stamped=()))
    assert rule.apply(honest, _context(10)).kept_mask.all()
    # three kept rows (the rest dropped earlier): no majority to compare with, nothing dropped, no score
    kept = np.zeros(10, dtype=bool)
    kept[[0, 8, 9]] = True
    few = UpdateBatch.from_updates(_round(np.random.default_rng(3)), kept=kept)
    result = rule.apply(few, _context(10))
    assert result.kept_mask.tolist() == kept.tolist() and set(result.notes["feature_score"]) == {None}


def test_rows_already_dropped_neither_score_nor_shift_the_median() -> None:
    rows = _round(np.random.default_rng(4), stamped=(6, 7, 8, 9))
    kept = np.ones(10, dtype=bool)
    kept[[6, 7]] = False  # four stamped rows of ten would be too many; two are gone already
    result = FeatureOutlierFilter(inputs=INPUTS, units=UNITS).apply(UpdateBatch.from_updates(rows, kept=kept),
                                                                    _context(10))  # fmt: skip
    assert result.kept_mask.tolist() == [True] * 6 + [False] * 4
    assert result.notes["feature_score"][6:8] == [None, None] and result.notes["dropped"] == 2


def test_the_spread_floor_keeps_a_feature_few_rows_move_from_making_everyone_an_outlier() -> None:
    # every feature but one is blank in most rows: without a floor the one honest row that moves feature 3 a
    # little would be infinitely far from a median and MAD of 0
    shares = np.zeros((8, 6))
    shares[:, 0] = np.linspace(0.5, 0.7, 8)
    shares[:, 1] = np.linspace(0.3, 0.4, 8)
    shares[2, 3] = 0.01
    scores, _ = feature_scores(shares)
    assert np.isfinite(scores).all() and scores[2] < 1.0


def test_bad_options_and_a_short_update_are_refused() -> None:
    for options, message in (
        ({"inputs": 0, "units": 4}, "inputs must be a positive integer"),
        ({"inputs": 4, "units": 2.5}, "units must be a positive integer"),
        ({"inputs": 4, "units": 2, "k": -1.0}, "k must be positive"),
        ({"inputs": 4, "units": 2, "outlier_score": "zero"}, "outlier_score must be one of"),
    ):
        with pytest.raises(ValueError, match=message):
            FeatureOutlierFilter(**options)
    with pytest.raises(PipelineSpecError, match="feature_outlier"):
        build_pipeline({"rules": [{"name": "feature_outlier", "inputs": 64}]})
    with pytest.raises(ValueError, match="first layer of 5 × 12 = 60 weights; the updates have 20"):
        FeatureOutlierFilter(inputs=INPUTS, units=UNITS).apply(UpdateBatch.from_updates(np.ones((5, 20))),
                                                              _context(5))  # fmt: skip


def test_a_protocol_task_must_name_its_models_first_layer() -> None:
    rules = ProtocolSpec(proof="pedersen", filters=({"name": "feature_outlier", "inputs": 64, "units": 32},))
    assert filter_pipeline(rules, ModelSpec("mlp", 64, 10, (32,))) is not None
    with pytest.raises(FedmarketError, match="reads a 32 × 64 first layer; the task's model starts with "
                                             "layers\\.0\\.weight of shape 10 × 64") as refused:  # fmt: skip
        filter_pipeline(rules, ModelSpec("logreg", 64, 10))
    assert refused.value.hint == "set inputs = 64 and units = 10"


def test_backdoor_owners_leave_on_digits_with_real_training() -> None:
    """Digits, label-skewed shards (Dirichlet α = 0.5), 30% of the owners stamp a 2×2 full-intensity corner block on
    half their rows and relabel them 0. Spec v11's rules removed one of the three backdoor owners in this seed in
    20 rounds (robustness grid); with the feature filter, capped, all three leave within 8 rounds, no honest owner
    does, and the backdoor does not take."""
    rules = [
        {"name": "near_duplicate", "twin_score": "capped"},
        {"name": "feature_outlier", "inputs": 64, "units": 32, "outlier_score": "capped"},
        {"name": "clip", "gamma": 1.0},
        {"name": "cosine", "threshold": 0.0, "reference": "median"},
    ]
    reputation = {"name": "rffl", "alpha": 0.95, "beta": "1/3", "missing_score": -0.25}
    result = replay_cell("digits", alpha=0.5, rounds=8, seed=BACKDOOR_SEED, attack="backdoor", fraction=0.3,
                         rules=rules, reputation=reputation)  # fmt: skip
    assert len(result.attackers) == 3 and set(result.removed_round) == set(result.attackers)
    assert result.backdoor_success is not None and result.backdoor_success < 0.1


BACKDOOR_SEED = 3
