"""Coordinate-wise median (Yin et al., ICML 2018, "Byzantine-Robust Distributed Learning").

Each coordinate of the aggregate is the median of that coordinate over the kept, clipped
updates; tolerates up to half of the senders being arbitrary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch


@dataclass(frozen=True)
class CoordinateMedian:
    """Aggregate = coordinate-wise median of the kept effective updates."""

    name: str = "median"

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        if not np.any(batch.kept):
            raise ValueError("median needs at least one kept update")
        aggregate = batch.coordinate_median().astype(batch.updates.dtype, copy=False)
        return RuleResult(kept_mask=batch.kept.copy(), scale=batch.scale.copy(), aggregate=aggregate)
