"""Norm-outlier filter: median absolute deviation (robust) or the 3σ rule.

An update whose norm is far from the crowd's is either a scaled/boosted attack (too large)
or a lazy free-rider (near zero). The MAD variant uses median ± k·1.4826·MAD, which a
minority of attackers cannot shift; the "sigma" variant is the classical mean ± k·σ used
by 3σ-Krum style filters (Buyukates et al. 2023, arXiv 2302.14031).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch

MAD_TO_SIGMA = 1.4826  # consistency constant: MAD·1.4826 estimates σ for normal data


def norm_outlier_mask(norms: np.ndarray, method: str, k: float, side: str) -> np.ndarray:
    """True for norms within the band; `side` is "upper", "lower" or "both"."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.size < 3:
        return np.ones(norms.size, dtype=bool)
    if method == "mad":
        centre = float(np.median(norms))
        spread = MAD_TO_SIGMA * float(np.median(np.abs(norms - centre)))
        if spread == 0.0:
            spread = float(np.mean(np.abs(norms - centre)))
    elif method == "sigma":
        centre = float(np.mean(norms))
        spread = float(np.std(norms))
    else:
        raise ValueError(f"unknown norm-outlier method {method!r}; expected 'mad' or 'sigma'")
    if spread == 0.0:
        return np.ones(norms.size, dtype=bool)
    upper_ok = norms <= centre + k * spread
    lower_ok = norms >= centre - k * spread
    if side == "upper":
        return upper_ok
    if side == "lower":
        return lower_ok
    return upper_ok & lower_ok


@dataclass(frozen=True)
class NormOutlierFilter:
    """Drop kept updates whose effective norm lies outside centre ± k·spread."""

    method: str = "mad"
    k: float = 3.0
    side: str = "both"
    name: str = "norm_outlier"

    def __post_init__(self) -> None:
        if self.method not in ("mad", "sigma"):
            raise ValueError(f"norm_outlier method must be 'mad' or 'sigma', got {self.method!r}")
        if self.side not in ("upper", "lower", "both"):
            raise ValueError(f"norm_outlier side must be 'upper', 'lower' or 'both', got {self.side!r}")
        if not self.k > 0:
            raise ValueError(f"norm_outlier k must be positive, got {self.k!r}")

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        index = np.flatnonzero(batch.kept)
        norms = batch.effective_norms()[index]
        inside = norm_outlier_mask(norms, self.method, self.k, self.side)
        kept = np.zeros(batch.n, dtype=bool)
        kept[index[inside]] = True
        return RuleResult(
            kept_mask=kept,
            scale=batch.scale.copy(),
            notes={"dropped": int(np.count_nonzero(~inside))},
        )
