"""Overshoot filter: drop an update whose full step does much worse on the validation set than a shorter step
along its own direction.

An honest data owner's local training stops where its own data's loss stopped falling, so on the task's
validation set the best point along its update's direction lies near the full step (one-class or small shards
overshoot a little). A boosted update (Δ × 10, Bhagoji et al. 2019) keeps the honest direction but overshoots
its own useful length many times, and clipping hides exactly that: clipped, it is an honest-looking vector, so
RFFL's cosine never lowers its sender's reputation. Measured on breast cancer (two classes, one-class shards at
Dirichlet α = 0.5, honest norms spread over 10×, where no norm rule tells the boosted from the honest), 5 seeds
× 20 rounds: the excess loss of an honest update, averaged over an owner's first 10 rounds, stayed ≤ 0.28 nats
at α = 0.5 and ≤ 0.09 at α = 100, that of a ×10 update ≥ 0.30 and ≥ 0.24, with medians of 2.4 and 2.5.

Zeno (Xie, Koyejo & Gupta, ICML 2019) scores an update by the validation-loss decrease it buys minus ρ·‖Δ‖²;
here the penalty is the update's own ray instead, which needs no ρ and no common norm scale:
    excess_i = L(θ + Δ_i) − min_s L(θ + s·Δ_i),  s ∈ {2⁻⁶, …, 2⁰, 2¹},
and a row is dropped when excess_i > threshold · L(θ): relative to the model's current loss, so one threshold
serves a task whose loss starts at ln 10 or at ln 2 and the early rounds, where every one-class shard
overshoots on balanced validation data, are judged as leniently as the late ones are strictly. Each candidate
is one forward pass over the validation set (`RoundContext.validation_loss`, batched): 8 per kept update and 1
for θ.

`outlier_score` says how a reputation scores a dropped row: "cosine" (default) against the aggregate, or
"capped", no better than a sender of nothing (RuleResult.capped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from aggregator.rules.base import (
    RoundContext,
    RuleResult,
    UpdateBatch,
    ValidationLoss,
    check_dropped_score,
    filter_result,
)

#: the step lengths tried along each update, as fractions of the update (1 is the update as sent)
STEP_FRACTIONS = tuple(2.0**k for k in range(-6, 2))
#: a model that fits the validation set perfectly still allows this much excess per unit of threshold (nats)
LOSS_FLOOR = 1e-3


@dataclass(frozen=True)
class OvershootFilter:
    """Drop kept updates whose validation loss exceeds the best along their own ray by more than `threshold`
    times the global model's validation loss."""

    threshold: float = 1.5
    outlier_score: str = "cosine"
    name: str = "overshoot"
    # the round aggregator passes the global model and the validation loss in RoundContext
    needs_validation: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not (np.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError(
                f"overshoot threshold must be a positive multiple of the model's loss, got {self.threshold!r}"
            )
        check_dropped_score(self.name, "outlier_score", self.outlier_score)

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        if ctx.model is None or ctx.validation_loss is None:
            raise ValueError("the overshoot rule needs the global model and the validation loss (RoundContext)")
        model = np.asarray(ctx.model, dtype=np.float32)
        if model.shape != (batch.updates.shape[1],):
            raise ValueError(f"the global model has {model.size} parameters; the updates have {batch.updates.shape[1]}")
        kept = batch.kept.copy()
        current = float(np.asarray(ctx.validation_loss(model[None, :]), dtype=np.float64)[0])
        if not np.isfinite(current):
            raise ValueError("the global model's validation loss is not finite")
        bound = self.threshold * max(current, LOSS_FLOOR)
        excess: list[float | None] = [None] * batch.n
        for i in np.flatnonzero(batch.kept):
            value = ray_excess(model, np.asarray(batch.updates[i], dtype=np.float32), ctx.validation_loss)
            excess[i] = round(value, 6)
            kept[i] = value <= bound
        return filter_result(batch, kept, self.outlier_score, excess_loss=excess, model_loss=round(current, 6))


def ray_excess(model: np.ndarray, update: np.ndarray, validation_loss: ValidationLoss) -> float:
    """L(θ + Δ) − min over STEP_FRACTIONS of L(θ + s·Δ): how much the full step loses to the best shorter or
    longer one; inf when the full step's loss is not finite (its sender sent something no model survives)."""
    candidates = model[None, :] + np.asarray(STEP_FRACTIONS, dtype=np.float32)[:, None] * update[None, :]
    losses = np.asarray(validation_loss(candidates), dtype=np.float64)
    full = losses[STEP_FRACTIONS.index(1.0)]
    if not np.isfinite(full):
        return float("inf")
    return float(full - np.min(losses[np.isfinite(losses)]))
