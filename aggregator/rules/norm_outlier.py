"""Norm-outlier filter: median absolute deviation (robust), the 3σ rule, or a ratio to the median.

An update whose norm is far from the crowd's is either a scaled/boosted attack (too large)
or a lazy free-rider (near zero). The MAD variant uses median ± k·1.4826·MAD, which a
minority of attackers cannot shift; the "sigma" variant is the classical mean ± k·σ used
by 3σ-Krum style filters (Buyukates et al. 2023, arXiv 2302.14031); the "ratio" variant keeps
median/k ≤ ‖Δ‖ ≤ k·median, which does not collapse when the honest norms are nearly equal
(an IID round makes the MAD tiny and every small deviation an outlier).

`size_exponent` e > 0 compares ‖Δ_i‖ / (n_i / median n)^e instead of ‖Δ_i‖, with n_i the data
size the round's context reports. Local training takes more steps on more data, so honest norms
grow with it: on digits an honest update's norm relative to the round's median grew as (n_i /
median n)^0.61–0.67, and with a power-law split the owner holding 5.4 × the median's rows sent
updates 2.7–5.6 × the median norm and lost its place to the plain ratio rule in every seed. Data
sizes are the owners' own claims in a real task (they also set first-round weights), so a larger
claim buys a wider bound; e = 0.5 widens it by the square root only.

`outlier_score` says how a reputation scores a dropped outlier: "cosine" (default) against the
aggregate, like any filtered owner, or "capped", no better than a sender of nothing
(min(cosine, missing score)): a boosted update keeps the honest direction, so its cosine alone
would never lower its reputation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch, check_dropped_score, filter_result

MAD_TO_SIGMA = 1.4826  # consistency constant: MAD·1.4826 estimates σ for normal data
METHODS = ("mad", "sigma", "ratio")


def median_and_mad_sigma(values: np.ndarray) -> tuple[float, float]:
    """(median, 1.4826·MAD): a centre and a σ estimate that a minority of outliers cannot shift."""
    centre = float(np.median(values))
    return centre, MAD_TO_SIGMA * float(np.median(np.abs(values - centre)))


def norm_outlier_mask(norms: np.ndarray, method: str, k: float, side: str) -> np.ndarray:
    """True for norms within the band; `side` is "upper", "lower" or "both"."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.size < 3:
        return np.ones(norms.size, dtype=bool)
    if method == "ratio":
        centre = float(np.median(norms))
        lower, upper = centre / k, centre * k
    else:
        if method == "mad":
            centre, spread = median_and_mad_sigma(norms)
            if spread == 0.0:
                spread = float(np.mean(np.abs(norms - centre)))
        elif method == "sigma":
            centre = float(np.mean(norms))
            spread = float(np.std(norms))
        else:
            raise ValueError(f"unknown norm-outlier method {method!r}; expected one of {', '.join(METHODS)}")
        if spread == 0.0:
            return np.ones(norms.size, dtype=bool)
        lower, upper = centre - k * spread, centre + k * spread
    upper_ok = norms <= upper
    lower_ok = norms >= lower
    if side == "upper":
        return upper_ok
    if side == "lower":
        return lower_ok
    return upper_ok & lower_ok


def size_factors(ctx: RoundContext, index: np.ndarray, exponent: float) -> np.ndarray:
    """(n_i / median n)^exponent over the rows `index`, from the round's reported data sizes."""
    if ctx.data_sizes is None:
        raise ValueError("norm_outlier size_exponent needs the round's data sizes (RoundContext.data_sizes)")
    sizes = np.asarray(ctx.data_sizes, dtype=np.float64)[index]
    if np.any(~np.isfinite(sizes)) or np.any(sizes <= 0):
        raise ValueError("norm_outlier size_exponent needs a positive data size for every kept update")
    return (sizes / float(np.median(sizes))) ** exponent


@dataclass(frozen=True)
class NormOutlierFilter:
    """Drop kept updates whose effective norm lies outside centre ± k·spread."""

    method: str = "mad"
    k: float = 3.0
    side: str = "both"
    outlier_score: str = "cosine"
    size_exponent: float = 0.0
    name: str = "norm_outlier"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"norm_outlier method must be one of {', '.join(METHODS)}, got {self.method!r}")
        check_dropped_score(self.name, "outlier_score", self.outlier_score)
        if self.method == "ratio" and not self.k > 1:
            raise ValueError(f"norm_outlier k must exceed 1 for the ratio method, got {self.k!r}")
        if self.side not in ("upper", "lower", "both"):
            raise ValueError(f"norm_outlier side must be 'upper', 'lower' or 'both', got {self.side!r}")
        if not self.k > 0:
            raise ValueError(f"norm_outlier k must be positive, got {self.k!r}")
        if not 0.0 <= self.size_exponent <= 1.0:
            raise ValueError(f"norm_outlier size_exponent must lie in [0, 1], got {self.size_exponent!r}")

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        index = np.flatnonzero(batch.kept)
        norms = batch.effective_norms()[index]
        if self.size_exponent > 0 and index.size:
            norms = norms / size_factors(ctx, index, self.size_exponent)
        inside = norm_outlier_mask(norms, self.method, self.k, self.side)
        kept = np.zeros(batch.n, dtype=bool)
        kept[index[inside]] = True
        return filter_result(batch, kept, self.outlier_score)
