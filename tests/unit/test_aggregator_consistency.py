"""Consistency filter: an update unrelated to its sender's previous one (fresh noise) is dropped."""

from __future__ import annotations

import numpy as np
import pytest
from grid_cell import replay_cell

from aggregator.history import UpdateHistory
from aggregator.pipeline import PipelineSpecError, RoundAggregator, build_pipeline
from aggregator.rules import ConsistencyFilter, RoundContext, UpdateBatch

SENDERS = ("a", "b", "c", "d", "e")


def _honest_round(rng: np.random.Generator, directions: np.ndarray) -> np.ndarray:
    """Each honest sender's update: its own fixed direction plus a little training noise."""
    return (directions + 0.3 * rng.normal(size=directions.shape)).astype(np.float32)


def test_fresh_noise_is_dropped_and_consistent_senders_kept() -> None:
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(5, 300))
    previous = _honest_round(rng, directions)
    now = _honest_round(rng, directions)
    now[4] = rng.uniform(-1, 1, size=300)  # a free-rider's new random vector
    history = {s: previous[i] for i, s in enumerate(SENDERS)}
    result = ConsistencyFilter().apply(UpdateBatch.from_updates(now), RoundContext(SENDERS, history=history))
    assert result.kept_mask.tolist() == [True, True, True, True, False]
    similarity = result.notes["previous_cosine"]
    assert min(similarity[:4]) > 0.8 and abs(similarity[4]) < 0.2
    assert result.notes["dropped"] == 1 and result.capped is None
    capped = ConsistencyFilter(outlier_score="capped").apply(
        UpdateBatch.from_updates(now), RoundContext(SENDERS, history=history)
    )
    assert capped.capped is not None and capped.capped.tolist() == [False] * 4 + [True]


def test_first_updates_pass_and_zero_updates_are_dropped() -> None:
    rows = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]], dtype=np.float32)
    history = {"b": np.array([1.0, 1.0], dtype=np.float32), "c": np.array([3.0, -1.2], dtype=np.float32)}
    result = ConsistencyFilter().apply(UpdateBatch.from_updates(rows), RoundContext(("a", "b", "c"), history=history))
    # "a" has no previous update; "b" sends nothing (cosine 0); "c" repeats itself
    assert result.kept_mask.tolist() == [True, False, True]
    assert result.notes["previous_cosine"][0] is None and result.notes["previous_cosine"][1] == 0.0


def test_rows_an_earlier_rule_dropped_are_not_judged() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    batch = UpdateBatch.from_updates(rows, kept=np.array([True, False]))
    history = {"a": np.array([-1.0, 0.0], dtype=np.float32), "b": np.array([1.0, 0.0], dtype=np.float32)}
    result = ConsistencyFilter().apply(batch, RoundContext(("a", "b"), history=history))
    assert result.kept_mask.tolist() == [False, False] and result.notes["dropped"] == 1
    assert result.notes["previous_cosine"] == [-1.0, None]


def test_missing_history_and_bad_options_are_refused() -> None:
    batch = UpdateBatch.from_updates(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="previous update"):
        ConsistencyFilter().apply(batch, RoundContext(("a", "b")))
    with pytest.raises(ValueError, match="shape"):
        ConsistencyFilter().apply(batch, RoundContext(("a", "b"), history={"a": np.ones(4, dtype=np.float32)}))
    with pytest.raises(PipelineSpecError, match="threshold"):
        build_pipeline({"rules": [{"name": "consistency", "threshold": 1.5}]})
    with pytest.raises(PipelineSpecError, match="outlier_score"):
        build_pipeline({"rules": [{"name": "consistency", "outlier_score": "zero"}]})
    with pytest.raises(PipelineSpecError, match="unknown field"):
        build_pipeline({"rules": [{"name": "consistency", "needs_history": False}]})


def _spec() -> dict:
    return {
        "rules": [{"name": "consistency", "outlier_score": "capped"}, {"name": "clip", "gamma": 1.0}],
        "reputation": {"name": "rffl", "alpha": 0.5},
    }


def _rounds(count: int, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(5, 200))
    rounds = []
    for _ in range(count):
        rows = _honest_round(rng, directions)
        rows[4] = rng.uniform(-1, 1, size=200)
        rounds.append(rows)
    return rounds


def test_the_round_aggregator_keeps_history_and_resumes_it_from_disk(tmp_path) -> None:
    rounds = _rounds(4)
    straight = RoundAggregator(build_pipeline(_spec()))
    expected = [straight.run(rows, list(SENDERS), [10] * 5) for rows in rounds]
    # the first round has no history; from the second on the noise sender is dropped
    assert expected[0].kept.all() and [o.kept.tolist()[4] for o in expected[1:]] == [False] * 3
    state = tmp_path / "rffl.json"
    first = RoundAggregator(build_pipeline(_spec()), state_path=state)
    for rows in rounds[:2]:
        first.run(rows, list(SENDERS), [10] * 5)
    assert (tmp_path / "rffl.json.history.npz").exists()
    resumed = RoundAggregator(build_pipeline(_spec()), state_path=state)
    for rows, want in zip(rounds[2:], expected[2:], strict=True):
        got = resumed.run(rows, list(SENDERS), [10] * 5)
        assert got.kept.tolist() == want.kept.tolist()
        assert got.reputations == pytest.approx(want.reputations, abs=0)


def test_a_non_finite_row_leaves_the_senders_last_update() -> None:
    aggregator = RoundAggregator(build_pipeline(_spec()))
    rounds = _rounds(2)
    aggregator.run(rounds[0], list(SENDERS), [10] * 5)
    broken = rounds[1].copy()
    broken[0, 0] = np.nan
    aggregator.history.record(list(SENDERS), broken, np.ones(5, dtype=bool))
    np.testing.assert_array_equal(aggregator.history.updates["a"], rounds[0][0])
    np.testing.assert_array_equal(aggregator.history.updates["b"], rounds[1][1])


def test_history_reuses_its_rows_and_never_aliases_the_callers() -> None:
    history = UpdateHistory()
    rounds = _rounds(3)
    history.record(list(SENDERS), rounds[0], np.ones(5, dtype=bool))
    first = dict(history.updates)
    norms = (rounds[1].astype(np.float64) ** 2).sum(1)
    norms[2] = np.nan  # what validation's pass reports for a non-finite row
    sent = rounds[1][0].copy()
    history.record(list(SENDERS), rounds[1], np.array([True, True, True, True, False]), norms)
    rounds[1][0] += 1.0  # the caller reuses its buffer: the history keeps what was sent
    assert all(history.updates[s] is first[s] for s in SENDERS)  # overwritten in place
    np.testing.assert_array_equal(history.updates["a"], sent)
    np.testing.assert_array_equal(history.updates["c"], rounds[0][2])  # non-finite by its norm: kept the last
    np.testing.assert_array_equal(history.updates["e"], rounds[0][4])  # inactive: kept the last
    longer = np.zeros((5, rounds[2].shape[1] + 1), dtype=np.float32)
    history.record(list(SENDERS), longer, np.ones(5, dtype=bool))  # a new shape gets a new row
    assert history.updates["a"].shape == (longer.shape[1],) and history.updates["a"] is not first["a"]


def test_random_free_riders_leave_on_breast_cancer_with_real_training() -> None:
    """Two-class task: RFFL (α = 0.98) alone kept every U(−1, 1) free-rider for 20 rounds (robustness
    spec v7); with the consistency filter their score is capped from round 2 and they leave by round 14."""
    rules = [
        {"name": "consistency", "outlier_score": "capped"},
        {"name": "near_duplicate", "twin_score": "capped"},
        {"name": "clip", "gamma": 0.5},
    ]
    result = replay_cell("breast_cancer", alpha=100.0, rounds=14, seed=0, attack="free_rider", fraction=0.2,
                         rules=rules, reputation={"name": "rffl", "alpha": 0.98, "beta": "1/3"})  # fmt: skip
    assert result.attackers and set(result.attackers) <= set(result.removed_round)
    assert not set(result.removed_round) - set(result.attackers)
