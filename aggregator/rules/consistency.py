"""Consistency filter: drop an update that does not point the way its sender's last one did.

An honest data owner trains on the same private data every round, from a global model that
moves a little between rounds, so its consecutive updates point the same way. In the robustness
grid (digits and breast cancer, 10 owners, 20 rounds, 3 seeds per cell) the cosine between an
honest owner's update and its previous one was at least 0.63 with label-skewed shares
(Dirichlet α = 0.5) and 0.97 at the median. A free-rider that sends fresh noise (RFFL's
U(−1, 1) "gradient", Lin et al. 2019) or an owner that buries its update under Gaussian noise
(Fang et al. 2020) sends a vector unrelated to its last one: at most 0.09 and 0.50. This is the
observation behind FLDetector (Zhang et al., KDD 2022), which predicts each client's update from
its history; this rule keeps its simplest form, the cosine to the last update. With IID shares
(α = 100) a converged model leaves an honest update mostly minibatch noise, and in a few rounds
an honest owner fell to 0.36 (digits) or below 0 (breast cancer); such a round costs that
owner its weight and, with "capped", its score for the round.

RFFL alone cannot tell a noise vector from a weak honest update when honest updates are noisy
themselves (two classes, one-class shards): clipped and kept, the noise vector's cosine to an
aggregate it is part of stays close to the honest ones, so its sender keeps its stake for ever.

The rule reads each sender's previous raw update from `RoundContext.history`: the research path's
round aggregator keeps it (aggregator.history), a protocol round reads it back from the chain and IPFS
(aggregator.protocol.previous_updates); an update with no previous one (the sender's first) is kept. It does not
catch a vector repeated round after round; RFFL scores that one by its cosine to the aggregate.

`outlier_score` says how a reputation scores a dropped row: "cosine" (default) against the
aggregate, or "capped", no better than a sender of nothing (RuleResult.capped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from aggregator.rules import passes
from aggregator.rules.base import RoundContext, RuleResult, UpdateBatch, check_dropped_score, filter_result


@dataclass(frozen=True)
class ConsistencyFilter:
    """Drop kept updates whose cosine to the sender's previous update is below `threshold`."""

    threshold: float = 0.5
    outlier_score: str = "cosine"
    name: str = "consistency"
    # the round aggregator passes each sender's previous update in RoundContext.history
    needs_history: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"consistency threshold must lie in [-1, 1], got {self.threshold!r}")
        check_dropped_score(self.name, "outlier_score", self.outlier_score)

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult:
        if ctx.history is None:
            raise ValueError("the consistency rule needs each sender's previous update (RoundContext.history)")
        kept = batch.kept.copy()
        similarity: list[float | None] = [None] * batch.n
        rows = [i for i in np.flatnonzero(batch.kept) if ctx.senders[i] in ctx.history]
        for i in rows:
            previous = ctx.history[ctx.senders[i]]
            if previous.shape != batch.updates[i].shape:
                raise ValueError(f"{ctx.senders[i]}'s previous update has shape {previous.shape}")
        # x·y and ‖y‖² in one sweep of both rows; ‖x‖ is the batch's (validation's pass computed it)
        dots = passes.paired_dots([batch.updates[i] for i in rows], [ctx.history[ctx.senders[i]] for i in rows])
        norms = batch.raw_norms()
        for i, (dot, previous_sq) in zip(rows, dots, strict=True):
            value = bounded_cosine(dot, norms[i] * np.sqrt(previous_sq))
            similarity[i] = round(value, 6)
            kept[i] = value >= self.threshold
        return filter_result(batch, kept, self.outlier_score, previous_cosine=similarity)


def bounded_cosine(dot: float, norms_product: float) -> float:
    """dot / (‖a‖·‖b‖) within [−1, 1]; 0 when either vector is zero or not finite."""
    if not (norms_product > 0 and np.isfinite(norms_product) and np.isfinite(dot)):
        return 0.0
    return float(np.clip(dot / norms_product, -1.0, 1.0))
