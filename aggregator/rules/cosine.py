"""Cosine-to-reference filter.

Drops updates whose direction disagrees with a reference aggregate: cos(Δ_i, u) < threshold.
This is the similarity RFFL scores reputations with (Xu & Lyu 2021), used here as a hard
per-round filter so that a poisoning minority never enters the aggregate even before its
reputation has decayed.

Two references (`reference`):
- "weighted" (default): the reputation- or data-size-weighted mean of the kept, clipped
  updates. One fused pass over the data, but the mean itself is not robust: in round 0 the
  weights are data sizes, so a minority with large data sets can tilt u towards itself and
  get the honest updates filtered (seen at 30% sign-flippers, Dirichlet α = 0.5).
- "median": the coordinate-wise median of the kept, clipped updates (Yin et al., ICML 2018),
  which a minority below one half cannot move arbitrarily; the same idea as FLTrust's trusted
  reference direction (Cao et al., NDSS 2021) without needing a server data set. Costs a
  selection per coordinate (no copy of the rows): 0.9 s a round at n = 100, d = 10^6 on 2 cores
  against 22 ms with the weighted mean, so it is meant for moderate d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch

COSINE_REFERENCES = ("weighted", "median")


def cosines_to_vector(batch: UpdateBatch, reference: np.ndarray) -> np.ndarray:
    """cos(Δ_i, reference) for every raw row (zero rows or a zero reference give 0)."""
    reference = np.asarray(reference, dtype=batch.updates.dtype)
    dots = (batch.updates @ reference).astype(np.float64)
    denominator = batch.raw_norms() * float(np.linalg.norm(reference.astype(np.float64)))
    with np.errstate(divide="ignore", invalid="ignore"):
        cosines = np.where(denominator > 0, dots / np.where(denominator > 0, denominator, 1.0), 0.0)
    return np.clip(cosines, -1.0, 1.0)


@dataclass(frozen=True)
class CosineFilter:
    """Keep Δ_i only if cos(Δ_i, u) ≥ `threshold`, u the weighted mean or coordinate median."""

    threshold: float = 0.0
    reference: str = "weighted"
    name: str = "cosine"

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"cosine threshold must lie in [-1, 1], got {self.threshold!r}")
        if self.reference not in COSINE_REFERENCES:
            raise ValueError(f"cosine reference must be one of {', '.join(COSINE_REFERENCES)}, got {self.reference!r}")

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        if self.reference == "median":
            cosines = cosines_to_vector(batch, batch.coordinate_median())
        else:
            # with reference weights a reputation aggregates next with the same weights minus the
            # rows dropped here: let the fused pass prepare that combination too
            likely_drop_below = self.threshold if ctx.reference_weights is not None else None
            _, cosines = batch.cosines_to(ctx.weights_for_reference(batch.n), likely_drop_below=likely_drop_below)
        kept = batch.kept & (cosines >= self.threshold)
        return RuleResult(
            kept_mask=kept,
            scale=batch.scale.copy(),
            notes={
                "dropped": int(np.count_nonzero(batch.kept & ~kept)),
                "cosines": [round(float(c), 6) for c in cosines],
            },
        )
