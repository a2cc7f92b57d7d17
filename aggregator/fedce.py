"""FedCE contribution estimation (Jiang et al., "Fair Federated Medical Image Segmentation via
Client Contribution Estimation", CVPR 2023).

Gradient space (server side, trusted): with current weights c and g = Σ_k c_k Δ_k,
  s_i^t = cos(Δ_i, g − c_i·Δ_i),  G_i = 1 − mean_{τ ≤ t} s_i^τ
(an update unlike the others' brings information they lack). Data space (client side):
D_i = 1 − mean_τ m_i^τ, m_i the metric of the "minus-i" model on client i's own validation
data; it is self-reported, so in a marketplace its weight is a task setting, default 0 (off).
Weights: round 0 c = 1/K; then Ĝ = G/ΣG and D̂ = D/ΣD, each clipped below at 1e−3, combined
c ∝ Ĝ + λ·D̂ ("plus", the paper's default) or c ∝ Ĝ·D̂ ("times"), normalised and clipped again.
FedCE is a fairness estimator, not a defence: dissimilar (e.g. sign-flipped) updates score
high, so run it after robust filtering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from aggregator.rules.base import UpdateBatch

CLIP_FLOOR = 1e-3


@dataclass(frozen=True)
class FedCEConfig:
    data_weight: float = 0.0
    combine: str = "plus"

    def __post_init__(self) -> None:
        if self.combine not in ("plus", "times"):
            raise ValueError(f"FedCE combine must be 'plus' or 'times', got {self.combine!r}")
        if self.data_weight < 0:
            raise ValueError("FedCE data_weight must be non-negative")


@dataclass
class FedCEState:
    weights: dict[str, float] = field(default_factory=dict)
    similarity_sum: dict[str, float] = field(default_factory=dict)
    similarity_count: dict[str, int] = field(default_factory=dict)
    metric_sum: dict[str, float] = field(default_factory=dict)
    metric_count: dict[str, int] = field(default_factory=dict)


def _clip_normalise(values: np.ndarray) -> np.ndarray:
    """x/Σx, then clipped below at 1e−3 as in the paper (zero total → uniform)."""
    total = float(values.sum())
    shares = values / total if total > 0 else np.full(values.shape, 1.0 / max(values.size, 1))
    return np.clip(shares, CLIP_FLOOR, None)


class FedCE:
    """Stateful FedCE over rounds; `step` returns this round's aggregation weights per row."""

    def __init__(self, config: FedCEConfig | None = None) -> None:
        self.config = config or FedCEConfig()
        self.state = FedCEState()

    def gradient_scores(self, senders: Sequence[str]) -> np.ndarray:
        return np.array(
            [
                1.0 - self.state.similarity_sum.get(s, 0.0) / max(self.state.similarity_count.get(s, 0), 1)
                for s in senders
            ]
        )

    def step(
        self,
        batch: UpdateBatch,
        senders: Sequence[str],
        client_metrics: Mapping[str, float] | None = None,
    ) -> np.ndarray:
        """Update G (and D when reported and enabled) from this round; return weights c (sum 1, kept rows)."""
        kept = batch.kept
        senders = list(senders)
        if not np.any(kept):
            return np.zeros(batch.n)
        previous = np.array([self.state.weights.get(s, 0.0) for s in senders])
        if not np.any(previous[kept] > 0):
            previous = np.where(kept, 1.0 / int(kept.sum()), 0.0)
        previous = np.where(kept, previous, 0.0)
        previous = previous / previous.sum()
        aggregate, dots = batch.combine_and_dots(previous)
        norms = batch.raw_norms()
        agg64 = aggregate.astype(np.float64)
        agg_sq = float(agg64 @ agg64)
        effective_norms = batch.effective_norms()
        coefficients = batch.effective_coefficients(previous)
        for row in np.flatnonzero(kept):
            # g_{-i} = g − c_i Δ_i ;  Δ_i·g_{-i} and ‖g_{-i}‖² from Δ_i·g, ‖g‖², ‖Δ_i‖² (no copies)
            own = coefficients[row]
            dot_raw = dots[row]
            s_i = batch.scale[row]
            dot_minus = s_i * (dot_raw - own * norms[row] ** 2)
            minus_sq = agg_sq - 2.0 * own * dot_raw + own**2 * norms[row] ** 2
            denominator = effective_norms[row] * np.sqrt(max(minus_sq, 0.0))
            similarity = dot_minus / denominator if denominator > 0 else 0.0
            sender = senders[row]
            self.state.similarity_sum[sender] = self.state.similarity_sum.get(sender, 0.0) + float(similarity)
            self.state.similarity_count[sender] = self.state.similarity_count.get(sender, 0) + 1
        if client_metrics:
            for sender, metric in client_metrics.items():
                self.state.metric_sum[sender] = self.state.metric_sum.get(sender, 0.0) + float(metric)
                self.state.metric_count[sender] = self.state.metric_count.get(sender, 0) + 1
        kept_senders = [senders[i] for i in np.flatnonzero(kept)]
        gradient = _clip_normalise(np.clip(self.gradient_scores(kept_senders), 0.0, None))
        combined = gradient
        if self.config.data_weight > 0 and self.state.metric_count:
            data = np.array(
                [
                    1.0 - self.state.metric_sum.get(s, 0.0) / max(self.state.metric_count.get(s, 0), 1)
                    if s in self.state.metric_count
                    else 0.0
                    for s in kept_senders
                ]
            )
            data = _clip_normalise(np.clip(data, 0.0, None))
            if self.config.combine == "plus":
                combined = gradient + self.config.data_weight * data
            else:
                combined = gradient * data**self.config.data_weight
        weights_kept = _clip_normalise(combined)
        weights_kept = weights_kept / weights_kept.sum()
        weights = np.zeros(batch.n)
        weights[kept] = weights_kept
        for sender, value in zip(kept_senders, weights_kept, strict=True):
            self.state.weights[sender] = float(value)
        return weights
