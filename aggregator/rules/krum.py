"""Multi-Krum (Blanchard et al., NeurIPS 2017, "Machine Learning with Adversaries").

Score each update by the sum of squared distances to its n − f − 2 nearest neighbours and
keep the m best-scored (m = 1 is Krum). Distances come from the Gram matrix of the
effective rows, ‖a−b‖² = ‖a‖² + ‖b‖² − 2⟨a,b⟩, so the update matrix is never copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch


def krum_scores(gram: np.ndarray, f: int) -> np.ndarray:
    """Krum score of every row given the Gram matrix of n rows and f assumed attackers."""
    n = gram.shape[0]
    sq = np.diag(gram)
    distances = np.clip(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0, None)
    np.fill_diagonal(distances, np.inf)
    neighbours = max(n - f - 2, 1)
    neighbours = min(neighbours, n - 1)
    nearest = np.partition(distances, neighbours - 1, axis=1)[:, :neighbours]
    return nearest.sum(axis=1)


@dataclass(frozen=True)
class MultiKrum:
    """Keep the `keep` updates with the lowest Krum score (default n − f); f from spec or context."""

    f: int | None = None
    keep: int | None = None
    name: str = "krum"

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        index = np.flatnonzero(batch.kept)
        n = index.size
        f = self.f if self.f is not None else (ctx.expected_attackers or 0)
        if n <= 2:
            return RuleResult(kept_mask=batch.kept.copy(), scale=batch.scale.copy(), notes={"skipped": n})
        scores = krum_scores(batch.kept_gram(), f)
        keep = self.keep if self.keep is not None else max(n - f, 1)
        keep = min(max(keep, 1), n)
        chosen = index[np.argsort(scores, kind="stable")[:keep]]
        kept = np.zeros(batch.n, dtype=bool)
        kept[chosen] = True
        return RuleResult(
            kept_mask=kept,
            scale=batch.scale.copy(),
            notes={"f": f, "kept": int(keep), "dropped": int(n - keep)},
        )
