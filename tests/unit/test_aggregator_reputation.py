"""RFFL reputation: attackers fall below β/|R|, weights follow data size first, state resumes exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aggregator.reputation import RFFLConfig, RFFLReputation
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
