"""Peer-support filter: drop an update that the honest majority does not point along with.

An update's support is its m-th highest cosine similarity to the other kept updates, with
m = ⌊r/2⌋ for r kept rows. A group smaller than half the round cannot lend its members that
many neighbours, so their support is their similarity to the rest of the round, while an
honest owner's neighbours include other honest owners. Colluding attackers who share a goal
(a backdoor trigger and target) resemble each other more than anyone else, which is the
observation behind FoolsGold (Fung et al., RAID 2020) and FLAME's majority clustering
(Nguyen et al., USENIX Security 2022); this rule keeps FLAME's "majority" idea as a robust
one-sided outlier test on the support values: below median − k·max(1.4826·MAD, min_spread).
A round of heterogeneous (non-IID) owners has widely spread supports and a wide band, an IID
round a narrow one; `min_spread` (in cosine units) keeps the band from collapsing there, where
honest supports agree to within 0.01 and an honest owner with an unusual share of the classes
(support 0.77 against a median of 0.87 in the robustness grid) would fall outside a pure MAD band.

`outlier_score` says how a reputation scores a dropped row: "cosine" (default) against the
aggregate, or "capped", no better than a sender of nothing (RuleResult.capped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch, check_dropped_score, filter_result
from aggregator.rules.duplicate import pairwise_cosines
from aggregator.rules.norm_outlier import median_and_mad_sigma

MIN_ROWS = 4  # with fewer kept rows no majority can lend support


def peer_support(cosines: np.ndarray) -> np.ndarray:
    """Each row's m-th highest cosine to the other rows (m = ⌊r/2⌋ of r rows); `cosines` has −1 on its diagonal."""
    m = cosines.shape[0] // 2
    return -np.sort(-cosines, axis=1)[:, m - 1]


@dataclass(frozen=True)
class PeerSupportFilter:
    """Drop kept updates whose peer support falls below median − k·max(1.4826·MAD, min_spread)."""

    k: float = 5.0
    min_spread: float = 0.05
    outlier_score: str = "cosine"
    name: str = "peer_support"

    def __post_init__(self) -> None:
        if not self.k > 0:
            raise ValueError(f"peer_support k must be positive, got {self.k!r}")
        if not 0.0 <= self.min_spread <= 2.0:
            raise ValueError(f"peer_support min_spread must lie in [0, 2], got {self.min_spread!r}")
        check_dropped_score(self.name, "outlier_score", self.outlier_score)

    def lower_bound(self, support: np.ndarray) -> float:
        """The least support a kept row may have this round."""
        centre, spread = median_and_mad_sigma(support)
        return centre - self.k * max(spread, self.min_spread)

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        index = np.flatnonzero(batch.kept)
        kept = batch.kept.copy()
        support = np.full(batch.n, np.nan)
        if index.size >= MIN_ROWS:
            values = peer_support(pairwise_cosines(batch.kept_gram()))
            support[index] = values
            kept[index[values < self.lower_bound(values)]] = False
        return filter_result(
            batch,
            kept,
            self.outlier_score,
            support=[None if np.isnan(v) else round(float(v), 6) for v in support],
        )
