"""Norm clipping, RFFL step 1 (Xu & Lyu, "A Reputation Mechanism Is All You Need", FL-ICML 2021).

If ‖Δ_i‖ > Γ then Δ_i ← Γ·Δ_i/‖Δ_i‖. Bounding every update's norm caps how far one sender
can move the model (scaling and U(−1,1) free-rider attacks) before any weighting happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch


def clip_factors(norms: np.ndarray, gamma: float) -> np.ndarray:
    """min(1, Γ/‖Δ_i‖) per row; rows of norm 0 keep factor 1."""
    norms = np.asarray(norms, dtype=np.float64)
    with np.errstate(divide="ignore"):
        factors = np.where(norms > gamma, gamma / np.where(norms > 0, norms, 1.0), 1.0)
    return factors


@dataclass(frozen=True)
class NormClip:
    """Scale every kept update down to norm at most `gamma` (RFFL's Γ)."""

    gamma: float
    name: str = "clip"

    def __post_init__(self) -> None:
        if not (self.gamma > 0 and np.isfinite(self.gamma)):
            raise ValueError(f"clip gamma must be a positive finite number, got {self.gamma!r}")

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        factors = clip_factors(batch.effective_norms(), self.gamma)
        clipped = int(np.count_nonzero(batch.kept & (factors < 1.0)))
        return RuleResult(
            kept_mask=batch.kept.copy(),
            scale=batch.scale * factors,
            notes={"clipped": clipped, "gamma": self.gamma},
        )
