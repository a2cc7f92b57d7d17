"""Peer-support filter: a colluding minority that resembles itself more than the round is dropped."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.pipeline import PipelineSpecError, build_pipeline
from aggregator.rules import PeerSupportFilter, RoundContext, UpdateBatch, passes, peer_support
from aggregator.rules.duplicate import pairwise_cosines


def _context(n: int) -> RoundContext:
    return RoundContext(tuple(f"s{i}" for i in range(n)), np.full(n, 100.0), np.full(n, 1.0 / n))


def _backdoor_round(rng: np.random.Generator, direction: np.ndarray, trigger: np.ndarray) -> np.ndarray:
    """7 honest rows along one direction, 3 attackers (rows 7-9) who add a shared trigger component."""
    rows = direction + 0.5 * rng.normal(size=(10, direction.size))
    rows[7:] += trigger
    return rows.astype(np.float32)


def test_peer_support_is_the_median_neighbours_cosine() -> None:
    cos = pairwise_cosines(np.array([[1.0, 0.9, 0.5, 0.1], [0.9, 1.0, 0.4, 0.2], [0.5, 0.4, 1.0, 0.3],
                                     [0.1, 0.2, 0.3, 1.0]]))  # fmt: skip
    # four rows: each row's 2nd highest cosine to the other three
    np.testing.assert_allclose(peer_support(cos), [0.5, 0.4, 0.4, 0.2])


def test_a_colluding_minority_is_dropped_and_the_honest_majority_kept() -> None:
    rng = np.random.default_rng(0)
    direction = rng.normal(size=400)
    trigger = 2.5 * rng.normal(size=400)
    batch = UpdateBatch.from_updates(_backdoor_round(rng, direction, trigger))
    result = PeerSupportFilter().apply(batch, _context(10))
    assert result.kept_mask.tolist() == [True] * 7 + [False] * 3
    assert result.capped is None and result.notes["dropped"] == 3
    # the attackers are closer to each other than to anyone honest; their support is the latter
    support = np.array(result.notes["support"])
    assert support[7:].max() < support[:7].min()


def test_capped_outlier_score_flags_the_dropped_rows() -> None:
    rng = np.random.default_rng(1)
    batch = UpdateBatch.from_updates(_backdoor_round(rng, rng.normal(size=400), 2.5 * rng.normal(size=400)))
    result = PeerSupportFilter(outlier_score="capped").apply(batch, _context(10))
    assert result.capped is not None and result.capped.tolist() == [False] * 7 + [True] * 3


def test_an_honest_round_keeps_everyone_and_small_rounds_are_left_alone() -> None:
    rng = np.random.default_rng(2)
    honest = (rng.normal(size=400) + 0.5 * rng.normal(size=(10, 400))).astype(np.float32)
    assert PeerSupportFilter().apply(UpdateBatch.from_updates(honest), _context(10)).kept_mask.all()
    three = UpdateBatch.from_updates(np.array([[1, 0], [0, 1], [-1, 0]], dtype=np.float32))
    assert PeerSupportFilter(k=0.1).apply(three, _context(3)).kept_mask.all()


def test_the_band_does_not_collapse_when_honest_supports_agree() -> None:
    # an IID round: nine supports within 0.01 of each other and one honest owner at 0.77
    support = np.array([0.77, 0.87, 0.876, 0.868, 0.871, 0.869, 0.859, 0.868, 0.871, 0.873])
    assert PeerSupportFilter(k=5.0, min_spread=0.0).lower_bound(support) > 0.77  # a pure MAD band drops it
    assert PeerSupportFilter(k=5.0, min_spread=0.05).lower_bound(support) == pytest.approx(0.8695 - 0.25)


def test_rows_already_dropped_are_not_peers() -> None:
    rng = np.random.default_rng(3)
    rows = _backdoor_round(rng, rng.normal(size=400), 2.5 * rng.normal(size=400))
    rows[0] = -rows[0]  # a sign-flipper an earlier rule dropped
    kept = np.ones(10, dtype=bool)
    kept[0] = False
    result = PeerSupportFilter().apply(UpdateBatch.from_updates(rows, kept=kept), _context(10))
    assert not result.kept_mask[0] and result.notes["support"][0] is None
    assert result.kept_mask[1:7].all() and not result.kept_mask[7:].any()


def test_a_later_rule_cuts_its_gram_matrix_from_an_earlier_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    updates = rng.normal(size=(8, 300)).astype(np.float32)
    batch = UpdateBatch.from_updates(updates)
    batch.kept_gram()
    kept = np.ones(8, dtype=bool)
    kept[[1, 5]] = False

    def no_second_pass(*_: object) -> np.ndarray:
        raise AssertionError("the Gram matrix of a subset was computed again")

    monkeypatch.setattr(passes, "gram_matrix", no_second_pass)
    sub = batch.derive(kept=kept, scale=np.linspace(0.5, 1.0, 8)).kept_gram()
    rows = updates[kept].astype(np.float64) * np.linspace(0.5, 1.0, 8)[kept, None]
    np.testing.assert_allclose(sub, rows @ rows.T, rtol=1e-5)


def test_peer_support_options_are_checked() -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        PeerSupportFilter(k=0.0)
    with pytest.raises(ValueError, match="min_spread"):
        PeerSupportFilter(min_spread=-0.1)
    with pytest.raises(ValueError, match="outlier_score"):
        PeerSupportFilter(outlier_score="zero")
    with pytest.raises(PipelineSpecError):
        build_pipeline({"rules": [{"name": "peer_support", "threshold": 0.5}]})
