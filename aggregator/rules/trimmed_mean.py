"""Coordinate-wise trimmed mean (Yin et al., ICML 2018).

Per coordinate, drop the ⌊β·n⌋ largest and ⌊β·n⌋ smallest values and average the rest, so a
β fraction of extreme senders cannot pull any coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch


@dataclass(frozen=True)
class TrimmedMean:
    """Aggregate = per-coordinate mean after trimming a `beta` fraction at each end."""

    beta: float = 0.1
    name: str = "trimmed_mean"

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta < 0.5:
            raise ValueError(f"trimmed-mean beta must lie in [0, 0.5), got {self.beta!r}")

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        n = int(np.count_nonzero(batch.kept))
        if n == 0:
            raise ValueError("trimmed mean needs at least one kept update")
        cut = int(np.floor(self.beta * n))
        return RuleResult(
            kept_mask=batch.kept.copy(),
            scale=batch.scale.copy(),
            aggregate=batch.coordinate_trimmed_mean(cut),
            notes={"trimmed_each_side": cut},
        )
