"""FedCE weights: a distribution with the paper's floor; data-space reports ignored unless enabled."""

from __future__ import annotations

import numpy as np

from aggregator.fedce import CLIP_FLOOR, FedCE, FedCEConfig
from aggregator.rules import UpdateBatch


def _updates(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=40)
    updates = direction + 0.2 * rng.normal(size=(5, 40))
    updates[4] = rng.normal(size=40) * 2  # unlike the others
    return updates


def test_weights_are_a_floored_distribution_and_novel_update_scores_high() -> None:
    fedce = FedCE()
    senders = [f"s{i}" for i in range(5)]
    for seed in range(3):
        weights = fedce.step(UpdateBatch.from_updates(_updates(seed)), senders)
    assert abs(weights.sum() - 1.0) < 1e-12
    assert np.all(weights >= CLIP_FLOOR / 1.01)
    scores = fedce.gradient_scores(senders)
    assert scores[4] == scores.max()


def test_client_metrics_only_count_when_enabled() -> None:
    senders = [f"s{i}" for i in range(5)]
    metrics = {"s0": 0.1, "s1": 0.9, "s2": 0.9, "s3": 0.9, "s4": 0.9}
    off, on = FedCE(), FedCE(FedCEConfig(data_weight=1.0))
    batch = UpdateBatch.from_updates(_updates())
    w_off = off.step(batch, senders, metrics)
    w_on = on.step(batch, senders, metrics)
    np.testing.assert_allclose(w_off, FedCE().step(batch, senders))
    assert w_on[0] > w_off[0]
