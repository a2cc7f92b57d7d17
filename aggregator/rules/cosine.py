"""Cosine-to-aggregate filter.

Drops updates whose direction disagrees with a reference aggregate (reputation- or
data-size-weighted mean of the kept, clipped updates): cos(Δ_i, u) < threshold. This is the
same similarity RFFL scores reputations with (Xu & Lyu 2021), used here as a hard per-round
filter so that a sign-flipping minority never enters the aggregate even before its
reputation has decayed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch


@dataclass(frozen=True)
class CosineFilter:
    """Keep Δ_i only if cos(Δ_i, u) ≥ `threshold`, u the weighted mean of the kept updates."""

    threshold: float = 0.0
    name: str = "cosine"

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"cosine threshold must lie in [-1, 1], got {self.threshold!r}")

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        weights = ctx.weights_for_reference(batch.n)
        _, cosines = batch.cosines_to(weights)
        kept = batch.kept & (cosines >= self.threshold)
        return RuleResult(
            kept_mask=kept,
            scale=batch.scale.copy(),
            notes={
                "dropped": int(np.count_nonzero(batch.kept & ~kept)),
                "cosines": [round(float(c), 6) for c in cosines],
            },
        )
