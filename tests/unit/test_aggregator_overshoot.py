"""Overshoot filter: an update whose full step does far worse on the validation set than a shorter step along its
own direction (a boosted update) is dropped; an honest one is kept."""

from __future__ import annotations

import numpy as np
import pytest
from grid_cell import replay_cell

from aggregator.pipeline import PipelineSpecError, RoundAggregator, build_pipeline
from aggregator.rules import OvershootFilter, RoundContext, UpdateBatch
from aggregator.rules.overshoot import STEP_FRACTIONS, ray_excess
from aggregator.shapley import BatchedModelEvaluator
from client.training import TrainConfig, train_local
from marketplace.data import dirichlet_split, load_builtin, split_holdout
from marketplace.models import ModelSpec, build_model, flatten, load_arrays, model_to_arrays, unflatten


def _quadratic(target: np.ndarray):  # type: ignore[no-untyped-def]
    """A validation loss with its minimum at `target`: ‖p − target‖² per row."""
    return lambda params: ((np.atleast_2d(params).astype(np.float64) - target) ** 2).sum(axis=1)


def test_the_excess_is_the_full_step_against_the_best_on_its_ray() -> None:
    target = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    loss = _quadratic(target)
    model = np.zeros(3, dtype=np.float32)
    norm_sq = float(target @ target)
    # Δ = 10·target: the full step lands at 9·target past the minimum, the best fraction 1/8 at 0.25·target short
    assert ray_excess(model, 10 * target, loss) == pytest.approx((81 - 0.0625) * norm_sq, rel=1e-5)
    # Δ = target: the full step is the minimum itself
    assert ray_excess(model, target, loss) == 0.0
    # Δ = target / 2: 2·Δ would be better, so the excess is the quarter the full step falls short by
    assert ray_excess(model, target / 2, loss) == pytest.approx(0.25 * norm_sq, rel=1e-5)
    assert 1.0 in STEP_FRACTIONS and min(STEP_FRACTIONS) < 0.1 < 1.5 < max(STEP_FRACTIONS)


def test_the_threshold_scales_with_the_models_loss_and_dropped_rows_can_be_capped() -> None:
    target = np.array([1.0, 1.0], dtype=np.float32)
    model = np.zeros(2, dtype=np.float32)  # L(θ) = 2
    rows = np.stack([target, 3 * target, 10 * target]).astype(np.float32)  # excess 0, 8 - 0 = 8, 162 - 0.125
    ctx = RoundContext(("a", "b", "c"), model=model, validation_loss=_quadratic(target))
    lenient = OvershootFilter(threshold=4.5).apply(UpdateBatch.from_updates(rows), ctx)  # bound 9
    assert lenient.kept_mask.tolist() == [True, True, False] and lenient.capped is None
    assert lenient.notes["model_loss"] == 2.0 and lenient.notes["excess_loss"][0] == 0.0
    strict = OvershootFilter(threshold=3.5, outlier_score="capped").apply(UpdateBatch.from_updates(rows), ctx)
    assert strict.kept_mask.tolist() == [True, False, False]  # bound 7 < 8
    assert strict.capped is not None and strict.capped.tolist() == [False, True, True]


def test_rows_already_dropped_are_not_tried_and_a_non_finite_step_is_dropped() -> None:
    target = np.array([1.0, 1.0], dtype=np.float32)
    rows = np.array([[1.0, 1.0], [50.0, 50.0], [1e38, 1e38]], dtype=np.float32)
    batch = UpdateBatch.from_updates(rows, kept=np.array([True, False, True]))

    def overflowing(params: np.ndarray) -> np.ndarray:  # float32 arithmetic, as a network's forward pass
        with np.errstate(over="ignore"):
            return ((np.atleast_2d(params) - target) ** 2).sum(axis=1, dtype=np.float32)

    ctx = RoundContext(("a", "b", "c"), model=np.zeros(2, dtype=np.float32), validation_loss=overflowing)
    result = OvershootFilter().apply(batch, ctx)
    assert result.kept_mask.tolist() == [True, False, False]
    assert result.notes["excess_loss"][1] is None and result.notes["excess_loss"][2] == float("inf")
    assert result.notes["dropped"] == 1  # "b" was dropped before this rule


def test_bad_options_and_a_missing_model_are_refused() -> None:
    for threshold in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive multiple"):
            OvershootFilter(threshold=threshold)
    with pytest.raises(ValueError, match="outlier_score"):
        OvershootFilter(outlier_score="zero")
    batch = UpdateBatch.from_updates(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="global model and the validation loss"):
        OvershootFilter().apply(batch, RoundContext(("a", "b")))
    wrong = RoundContext(("a", "b"), model=np.zeros(4, dtype=np.float32), validation_loss=_quadratic(np.zeros(4)))
    with pytest.raises(ValueError, match="4 parameters"):
        OvershootFilter().apply(batch, wrong)
    with pytest.raises(PipelineSpecError, match="overshoot"):
        build_pipeline({"rules": [{"name": "overshoot", "threshold": "high"}]})
    pipeline = build_pipeline({"rules": [{"name": "overshoot"}], "reputation": "rffl"})
    assert pipeline.needs_validation and not pipeline.needs_history
    with pytest.raises(ValueError, match="global model and the validation loss"):
        RoundAggregator(pipeline).run(np.ones((2, 3), dtype=np.float32), ["a", "b"], [10, 10])


def test_boosted_updates_are_dropped_and_honest_ones_kept_with_real_training() -> None:
    """Breast cancer, the robustness grid's MLP and training, label-skewed shards (Dirichlet α = 0.5), first round:
    every honest update stays within 1.5 × the model's loss of its ray's best point; the same updates boosted
    tenfold overshoot more, each of them, and most of them past the bound (an owner whose own step is short
    still lands near the minimum when boosted, and is judged again next round)."""
    data, schema = load_builtin("breast_cancer")
    train, validation, _ = split_holdout(data, 0.2, 0.2, seed=0)
    spec = ModelSpec("mlp", schema.num_features, schema.num_classes, (16,))
    theta = flatten(model_to_arrays(build_model(spec, seed=0)), spec).astype(np.float32)
    rows = []
    for i, part in enumerate(dirichlet_split(train.y, 6, 0.5, seed=0)):
        model = build_model(spec, seed=0)
        load_arrays(model, unflatten(theta, spec))
        train_local(model, train.subset(part), TrainConfig(epochs=5, lr=0.1, batch_size=32, momentum=0.9, seed=i))
        rows.append(flatten(model_to_arrays(model), spec) - theta)
    honest = np.stack(rows).astype(np.float32)
    evaluator = BatchedModelEvaluator(spec, validation.X, validation.y, metric="neg_loss")
    assert np.array_equal(evaluator.loss(honest[:2] + theta), -evaluator(honest[:2] + theta))
    with pytest.raises(ValueError, match="neg_loss evaluator"):
        BatchedModelEvaluator(spec, validation.X, validation.y).loss(theta)
    ctx = RoundContext(tuple("abcdef"), model=theta, validation_loss=evaluator.loss)
    rule = OvershootFilter(threshold=1.5, outlier_score="capped")
    kept = rule.apply(UpdateBatch.from_updates(honest), ctx)
    boosted = rule.apply(UpdateBatch.from_updates(10 * honest), ctx)
    print(f"model loss {kept.notes['model_loss']:.3f}, honest excess {kept.notes['excess_loss']}, "
          f"boosted {boosted.notes['excess_loss']}")  # fmt: skip
    assert kept.kept_mask.all() and kept.notes["dropped"] == 0
    assert all(b > h for b, h in zip(boosted.notes["excess_loss"], kept.notes["excess_loss"], strict=True))
    assert boosted.notes["dropped"] >= 4 and boosted.capped is not None
    assert boosted.capped.tolist() == (~boosted.kept_mask).tolist()


def test_scaled_owners_leave_on_breast_cancer_where_no_norm_rule_can_tell_them() -> None:
    """Two-class task, IID shards, 30% of owners send ×10 their honest step: spec v10's rules alone removed none
    of them in 20 rounds (robustness grid, every seed); with the overshoot filter, capped, all three leave by round
    10 on this seed and no honest owner does."""
    rules = [
        {"name": "consistency", "outlier_score": "capped"},
        {"name": "near_duplicate", "twin_score": "capped"},
        {"name": "overshoot", "threshold": 1.5, "outlier_score": "capped"},
        {"name": "clip", "gamma": 0.5},
    ]
    reputation = {"name": "rffl", "alpha": 0.98, "beta": "1/3", "missing_score": -0.25}
    result = replay_cell("breast_cancer", alpha=100.0, rounds=10, seed=SCALED_SEED, attack="scaling", fraction=0.3,
                         rules=rules, reputation=reputation)  # fmt: skip
    assert len(result.attackers) == 3 and set(result.removed_round) == set(result.attackers)


SCALED_SEED = 1
