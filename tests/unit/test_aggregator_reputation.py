"""RFFL reputation: attackers fall below β/|R|, weights follow data size first, state resumes exactly."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from aggregator.reputation import RFFLConfig, RFFLReputation, removal_beta
from aggregator.rules import NormClip, RoundContext, UpdateBatch

SENDERS = [f"s{i}" for i in range(8)]
SIZES = [50, 60, 70, 80, 90, 100, 110, 120]


def _round(rng: np.random.Generator, direction: np.ndarray, flipper: int = 0) -> np.ndarray:
    updates = direction + 0.8 * rng.normal(size=(len(SENDERS), direction.size))
    updates[flipper] = -updates[flipper]
    return updates.astype(np.float32)


def _step(reputation: RFFLReputation, updates: np.ndarray) -> object:
    rows = [i for i, s in enumerate(SENDERS) if not reputation.state.participants or reputation.is_active(s)]
    batch = UpdateBatch.from_updates(updates[rows])
    ctx = RoundContext(tuple(SENDERS[i] for i in rows))
    batch = batch.derive(scale=NormClip(1.0).apply(batch, ctx).scale)
    return reputation.step(batch, [SENDERS[i] for i in rows], [SIZES[i] for i in rows])


def test_sign_flipper_is_removed_within_three_rounds_and_honest_stay() -> None:
    rng = np.random.default_rng(7)
    direction = rng.normal(size=200)
    reputation = RFFLReputation(RFFLConfig())
    for _ in range(3):
        _step(reputation, _round(rng, direction))
    assert reputation.removed == {"s0": reputation.removed["s0"]} and reputation.removed["s0"] <= 3
    assert reputation.reputation_of("s0") == 0.0
    assert abs(sum(reputation.reputations.values()) - 1.0) < 1e-9


def test_first_round_weights_follow_data_size() -> None:
    rng = np.random.default_rng(0)
    reputation = RFFLReputation()
    result = _step(reputation, _round(rng, rng.normal(size=50)))
    clip_free = result.coefficients  # all norms may be clipped; compare ratios of size × clip factor
    assert np.all(clip_free > 0)
    reputation2 = RFFLReputation()
    reputation2.start(SENDERS)
    np.testing.assert_allclose(reputation2.base_weights(SENDERS, SIZES), np.array(SIZES) / sum(SIZES))


def test_state_persists_and_resumes_identically(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    direction = rng.normal(size=100)
    rounds = [_round(rng, direction, flipper=2) for _ in range(6)]
    uninterrupted = RFFLReputation()
    for updates in rounds:
        _step(uninterrupted, updates)
    path = tmp_path / "task-7" / "reputation.json"
    first = RFFLReputation(state_path=path)
    for updates in rounds[:3]:
        _step(first, updates)
    resumed = RFFLReputation(state_path=path)  # a restarted aggregator
    assert resumed.state == first.state
    for updates in rounds[3:]:
        _step(resumed, updates)
    assert resumed.state == uninterrupted.state
    assert json.loads(path.read_text())["rounds_done"] == 6
    assert [p.name for p in path.parent.iterdir()] == ["reputation.json"]  # no temp files left behind


def test_missing_sender_scores_missing_score() -> None:
    rng = np.random.default_rng(1)
    reputation = RFFLReputation(RFFLConfig(missing_score=0.0))
    reputation.start(SENDERS)
    updates = _round(rng, rng.normal(size=30), flipper=1)[1:]
    batch = UpdateBatch.from_updates(updates)
    result = reputation.step(batch, SENDERS[1:], SIZES[1:])
    assert result.phis["s0"] == 0.0


def test_a_copy_scores_no_better_than_a_missing_update() -> None:
    rng = np.random.default_rng(2)
    direction = rng.normal(size=30)
    updates = (direction + 0.5 * rng.normal(size=(len(SENDERS), 30))).astype(np.float32)
    updates[1] = -updates[1]  # a copy pointing against the aggregate keeps its negative score
    flags = np.zeros(len(SENDERS), dtype=bool)
    flags[[0, 1]] = True
    plain = RFFLReputation(RFFLConfig(missing_score=0.0))
    plain.start(SENDERS)
    scored = plain.step(UpdateBatch.from_updates(updates), SENDERS, SIZES).phis
    capped_reputation = RFFLReputation(RFFLConfig(missing_score=0.0))
    capped_reputation.start(SENDERS)
    capped = capped_reputation.step(UpdateBatch.from_updates(updates), SENDERS, SIZES, capped=flags).phis
    assert scored["s0"] > 0.5 and capped["s0"] == 0.0
    assert scored["s1"] < 0.0 and capped["s1"] == scored["s1"]
    assert all(capped[s] == scored[s] for s in SENDERS[2:])
    with pytest.raises(ValueError, match="capped"):
        plain.step(UpdateBatch.from_updates(updates), SENDERS, SIZES, capped=flags[:2])


def _weak_owner_rounds(rounds: int, seed: int = 5) -> list[np.ndarray]:
    """s1 sends a faint share of the common direction under heavy noise: a small, positive cosine."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=200)
    out = []
    for _ in range(rounds):
        updates = direction + 0.8 * rng.normal(size=(len(SENDERS), direction.size))
        updates[1] = 0.15 * direction + 1.5 * rng.normal(size=direction.size)
        out.append(updates.astype(np.float32))
    return out


def test_removal_window_keeps_a_weak_owner_that_plain_rffl_removes() -> None:
    plain, windowed = RFFLReputation(RFFLConfig()), RFFLReputation(RFFLConfig(removal_rounds=2))
    for updates in _weak_owner_rounds(15):
        _step(plain, updates)
        _step(windowed, updates)
    assert plain.removed == {"s1": 8}  # below β/|R| in round 8
    assert windowed.removed == {} and windowed.reputation_of("s1") > 0
    # reputations still weight it down: far below the others' share
    assert windowed.reputation_of("s1") < 0.2 * min(r for s, r in windowed.reputations.items() if s != "s1")


def test_removal_beta_is_beta_inside_the_window_and_zero_after() -> None:
    config = RFFLConfig(beta=Fraction(1, 3), removal_rounds=2)
    assert [config.beta_in_round(r) for r in (1, 2, 3, 9)] == [Fraction(1, 3), Fraction(1, 3), 0, 0]
    assert RFFLConfig().beta_in_round(1000) == Fraction(1, 3)
    assert removal_beta(Fraction(1, 4), 0, 1) == 0
    for bad in (-1, True, 2.5, "3"):
        with pytest.raises(ValueError, match="removal_rounds"):
            RFFLConfig(removal_rounds=bad)  # type: ignore[arg-type]


def _filtered_owner_removal_round(missing_score: float, rounds: int = 20) -> int | None:
    """s1 sends an honest-looking update that a filter drops every round, at RFFL α = 0.98 (two-class tasks);
    the honest cosines are low (heavy noise), as late in training on breast cancer."""
    rng = np.random.default_rng(3)
    direction = rng.normal(size=200)
    reputation = RFFLReputation(RFFLConfig(alpha=0.98, missing_score=missing_score))
    for _ in range(rounds):
        rows = [i for i, s in enumerate(SENDERS) if not reputation.state.participants or reputation.is_active(s)]
        updates = (direction + 2.0 * rng.normal(size=(len(SENDERS), direction.size))).astype(np.float32)
        dropped = np.array([SENDERS[i] == "s1" for i in rows])
        senders = [SENDERS[i] for i in rows]
        reputation.step(UpdateBatch.from_updates(updates[rows]), senders, [SIZES[i] for i in rows], capped=dropped)
    assert set(reputation.removed) <= {"s1"}  # no honest owner leaves
    return reputation.removed.get("s1")


def test_a_negative_dropped_score_removes_a_filtered_owner_inside_a_ten_round_window() -> None:
    """Scored like a sender of nothing (0), a row dropped every round leaves only in round 15 at α = 0.98; at
    −0.25 (spec v10) it leaves by round 10, inside the removal window that keeps late honest drifters."""
    assert _filtered_owner_removal_round(0.0) == 15
    assert _filtered_owner_removal_round(-0.25) == 8
