"""RFFL reputation (Xu & Lyu, "A Reputation Mechanism Is All You Need", FL-ICML 2021).

Per round, over the reputable set R:
  u = Σ_i w_i·clip_Γ(Δ_i) with w = n_i/Σn in the first round and w = r afterwards;
  φ_i = cos(Δ_i, u); r_i ← α·r_i + (1−α)·φ_i (α = 0.95); r ← r/Σr;
  i leaves R for good when r_i < β/|R| (β = 1/3), then r is renormalised.
An optional removal window (`removal_rounds` = W) lets removal act in rounds 1..W only (β is 0
afterwards; reputations keep weighting the aggregate): persistent adversaries fall below β/|R|
early, while late in training, as the model converges and every update becomes small and noisy,
honest owners with skewed data drift below it (benchmarks/beta_sweep.py --windows measures both).
Choices this module makes explicit (the paper leaves them open):
- initial reputations are uniform 1/|R| (data size only sets the first round's weights), so a
  small-but-honest owner is not removed before it has been scored;
- a negative reputation is clamped to 0 before normalising (it then falls under β/|R|);
- a participant in R that sent nothing valid this round scores φ = `missing_score` (0);
- a participant dropped this round by a robust rule is still scored against u (which it did
  not shape), so persistent attackers lose reputation even while filtered out; a copy or a
  boosted update (a near-duplicate twin or a norm outlier, when its rule says so) scores no
  better than a sender of nothing, min(φ, `missing_score`): a "little is enough" group sends
  one vector built to look like the honest mean, and a scaled update keeps the honest
  direction, so their cosines would keep them reputable while they contribute nothing.
State is persisted per task as JSON (written atomically) after every round, so an
aggregator that restarts resumes with exactly the same numbers. Two arithmetics share the
state format: "float" for research runs and "fixed" (aggregator.fixedpoint, the on-chain
protocol).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from aggregator import fixedpoint
from aggregator.rules.base import UpdateBatch

STATE_VERSION = 1


@dataclass(frozen=True)
class RFFLConfig:
    """RFFL's published hyper-parameters; β is rational so the fixed-point threshold is exact."""

    alpha: float = 0.95
    beta: Fraction = Fraction(1, 3)
    missing_score: float = 0.0
    removal_rounds: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"RFFL alpha must lie in [0, 1), got {self.alpha!r}")
        object.__setattr__(self, "beta", Fraction(self.beta).limit_denominator(10**6))
        if not 0 <= self.beta < 1:
            raise ValueError(f"RFFL beta must lie in [0, 1), got {self.beta!r}")
        if not -1.0 <= self.missing_score <= 1.0:
            raise ValueError(f"missing_score must lie in [-1, 1], got {self.missing_score!r}")
        if self.removal_rounds is not None and (
            isinstance(self.removal_rounds, bool) or not isinstance(self.removal_rounds, int) or self.removal_rounds < 0
        ):
            raise ValueError(f"removal_rounds must be a non-negative integer or None, got {self.removal_rounds!r}")

    def beta_in_round(self, round_number: int) -> Fraction:
        """β for round `round_number` (1-based): 0 past the removal window, so nobody is removed."""
        return removal_beta(self.beta, self.removal_rounds, round_number)


def removal_beta(beta: Fraction, removal_rounds: int | None, round_number: int) -> Fraction:
    """The removal threshold β a round applies: β within rounds 1..removal_rounds (every round
    when None), 0 afterwards. One definition for the aggregator, the prover and the auditor."""
    return beta if removal_rounds is None or round_number <= removal_rounds else Fraction(0)


@dataclass
class RFFLState:
    """Everything needed to resume: participants in order, reputations, who left and when."""

    arithmetic: str
    participants: list[str] = field(default_factory=list)
    reputations: list[Any] = field(default_factory=list)
    active: list[bool] = field(default_factory=list)
    removed_round: dict[str, int] = field(default_factory=dict)
    rounds_done: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "arithmetic": self.arithmetic,
            "participants": self.participants,
            "reputations": self.reputations,
            "active": self.active,
            "removed_round": self.removed_round,
            "rounds_done": self.rounds_done,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RFFLState:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported reputation state version {data.get('version')!r}")
        state = cls(
            arithmetic=data["arithmetic"],
            participants=list(data["participants"]),
            reputations=list(data["reputations"]),
            active=[bool(a) for a in data["active"]],
            removed_round={k: int(v) for k, v in data["removed_round"].items()},
            rounds_done=int(data["rounds_done"]),
        )
        if not len(state.participants) == len(state.reputations) == len(state.active):
            raise ValueError("reputation state lists have different lengths")
        return state


def write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RFFLRoundResult:
    """One round's outcome. Row-aligned arrays follow the order of the senders passed in."""

    coefficients: np.ndarray
    aggregate: np.ndarray
    phis: dict[str, float]
    reputations: dict[str, float]
    removed_now: list[str]
    active: list[str]
    fixed: fixedpoint.FixedRoundOutcome | None = None


class RFFLReputation:
    """Stateful RFFL over a task's fixed set of participants, optionally persisted to `state_path`."""

    def __init__(
        self,
        config: RFFLConfig | None = None,
        *,
        state_path: Path | str | None = None,
        arithmetic: str = "float",
    ) -> None:
        if arithmetic not in ("float", "fixed"):
            raise ValueError(f"arithmetic must be 'float' or 'fixed', got {arithmetic!r}")
        self.config = config or RFFLConfig()
        self.state_path = Path(state_path) if state_path is not None else None
        if self.state_path is not None and self.state_path.exists():
            self.state = RFFLState.from_json(json.loads(self.state_path.read_text(encoding="utf-8")))
            if self.state.arithmetic != arithmetic:
                raise ValueError(f"state at {self.state_path} uses {self.state.arithmetic} arithmetic")
        else:
            self.state = RFFLState(arithmetic=arithmetic)

    # -- membership -------------------------------------------------------------------------
    def start(self, participants: Sequence[str]) -> None:
        """Register the task's participants once, with uniform reputations."""
        if self.state.participants:
            return
        if len(set(participants)) != len(participants) or not participants:
            raise ValueError("participants must be a non-empty list of distinct ids")
        n = len(participants)
        self.state.participants = list(participants)
        self.state.active = [True] * n
        if self.state.arithmetic == "fixed":
            self.state.reputations = [fixedpoint.ONE // n] * n
        else:
            self.state.reputations = [1.0 / n] * n

    def is_active(self, sender: str) -> bool:
        index = self._index().get(sender)
        return index is not None and self.state.active[index]

    def reputation_of(self, sender: str) -> float:
        """Reputation as a float in [0, 1] (fixed-point values divided by ONE)."""
        return self._as_float(self.state.reputations[self._index()[sender]])

    @property
    def reputations(self) -> dict[str, float]:
        return {p: self._as_float(v) for p, v in zip(self.state.participants, self.state.reputations, strict=True)}

    def _as_float(self, value: Any) -> float:
        return value / fixedpoint.ONE if self.state.arithmetic == "fixed" else float(value)

    @property
    def removed(self) -> dict[str, int]:
        return dict(self.state.removed_round)

    def _index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.state.participants)}

    def base_weights(self, senders: Sequence[str], data_sizes: Sequence[int]) -> np.ndarray:
        """This round's aggregation weights per sender row before clipping: data shares, then r."""
        index = self._index()
        sizes = np.asarray(data_sizes, dtype=np.float64)
        active_rows = np.array([index.get(s) is not None and self.state.active[index[s]] for s in senders])
        if self.state.rounds_done == 0:
            total = float(sizes[active_rows].sum())
            return np.where(active_rows, sizes / total if total > 0 else 0.0, 0.0)
        reps = np.array(
            [float(self.state.reputations[index[s]]) if ok else 0.0 for s, ok in zip(senders, active_rows, strict=True)]
        )
        return reps

    # -- float path ---------------------------------------------------------------------------
    def step(
        self,
        batch: UpdateBatch,
        senders: Sequence[str],
        data_sizes: Sequence[int],
        capped: np.ndarray | None = None,
    ) -> RFFLRoundResult:
        """Score one round of (already clipped/filtered) float updates and update reputations.

        Rows flagged `capped` (a rule found them to be copies or boosted) score no better than a
        sender of nothing: min(cosine to the aggregate, `missing_score`).
        """
        if self.state.arithmetic != "float":
            raise ValueError("this reputation state uses fixed-point arithmetic; call step_fixed")
        if len(senders) != batch.n or len(data_sizes) != batch.n:
            raise ValueError("senders and data_sizes must have one entry per update row")
        capped = np.zeros(batch.n, dtype=bool) if capped is None else np.asarray(capped, dtype=bool)
        if capped.shape != (batch.n,):
            raise ValueError(f"capped has shape {capped.shape}; expected ({batch.n},)")
        self.start(list(senders))
        index = self._index()
        base = self.base_weights(senders, data_sizes)
        weights = np.where(batch.kept, base, 0.0)
        total = float(weights.sum())
        # the round's last use of u: it is handed over and normalised in place (a new 4 MB vector at
        # d = 10^6 costs ~1 ms of page faults, a tenth of a bare weighted sum)
        aggregate, cosines = batch.cosines_to(weights, release=True)
        if total > 0:
            aggregate /= total
        else:
            aggregate[:] = 0
        coefficients = batch.effective_coefficients(weights) / (total if total > 0 else 1.0)

        phis = np.full(len(self.state.participants), self.config.missing_score, dtype=np.float64)
        for row, sender in enumerate(senders):
            position = index.get(sender)
            if position is not None:
                phis[position] = cosines[row] if total > 0 else 0.0
                if capped[row]:
                    phis[position] = min(phis[position], self.config.missing_score)
        reps = np.asarray(self.state.reputations, dtype=np.float64)
        retired = self._zero_reputation()
        phis[retired] = 0.0  # not scored: the protocol's φ of an inactive owner is 0
        active = np.asarray(self.state.active, dtype=bool) & ~retired
        alpha = self.config.alpha
        reps = np.where(active, np.clip(alpha * reps + (1.0 - alpha) * phis, 0.0, None), 0.0)
        reps = _normalised(reps)
        beta = self.config.beta_in_round(self.state.rounds_done + 1)
        threshold = float(beta) / max(int(active.sum()), 1)
        removed_mask = (active & (reps < threshold)) | retired
        reps = _normalised(np.where(removed_mask, 0.0, reps))
        return self._commit(reps.tolist(), removed_mask, phis, coefficients, aggregate, None)

    # -- fixed-point path -----------------------------------------------------------------------
    def step_fixed(
        self,
        q: np.ndarray,
        senders: Sequence[str],
        kept: Sequence[bool],
        data_sizes: Sequence[int],
        gamma_q: int,
    ) -> RFFLRoundResult:
        """The protocol's integer RFFL round (aggregator.fixedpoint.rffl_round) for quantized rows."""
        if self.state.arithmetic != "fixed":
            raise ValueError("this reputation state uses float arithmetic; call step")
        if not (len(senders) == q.shape[0] == len(kept) == len(data_sizes)):
            raise ValueError("senders, kept and data_sizes must have one entry per update row")
        self.start(list(senders))
        index = self._index()
        n = len(self.state.participants)
        rows = np.zeros((n, q.shape[1]), dtype=q.dtype)
        submitted = [False] * n
        kept_full = [False] * n
        sizes = [0] * n
        for row, sender in enumerate(senders):
            position = index.get(sender)
            if position is None:
                continue
            rows[position] = q[row]
            submitted[position] = True
            kept_full[position] = bool(kept[row])
            sizes[position] = int(data_sizes[row])
        if self.state.rounds_done == 0:
            eligible = [s if a and sub else 0 for s, a, sub in zip(sizes, self.state.active, submitted, strict=True)]
            base = fixedpoint.data_size_shares(eligible) if sum(eligible) else [0] * n
        else:
            base = [int(r) for r in self.state.reputations]
        retired = self._zero_reputation()
        outcome = fixedpoint.rffl_round(
            rows,
            submitted=submitted,
            kept=kept_full,
            active=[a and not r for a, r in zip(self.state.active, retired, strict=True)],
            base_weights=base,
            reputations=[int(r) for r in self.state.reputations],
            gamma_q=gamma_q,
            alpha_fp=fixedpoint.to_fixed(self.config.alpha),
            beta=self.config.beta_in_round(self.state.rounds_done + 1),
            missing_fp=fixedpoint.to_fixed(Fraction(str(self.config.missing_score))),
        )
        phis = np.asarray(outcome.phis, dtype=np.float64) / fixedpoint.ONE
        coefficients = np.array([outcome.weights[index[s]] if s in index else 0 for s in senders], dtype=np.float64)
        removed = np.asarray(outcome.removed, dtype=bool) | retired
        return self._commit(outcome.reputations, removed, phis, coefficients, outcome.aggregate, outcome)

    # -- shared bookkeeping ---------------------------------------------------------------------
    def _zero_reputation(self) -> np.ndarray:
        """Active participants whose reputation is exactly 0 after a round (a clamped negative score).

        The protocol counts reputation 0 as removed (aggregator.protocol.plan marks them inactive),
        whatever β is; with β > 0 they were already removed in the round that zeroed them, so this
        matters only past a removal window (β = 0), where they leave one round later.
        """
        if self.state.rounds_done == 0:
            return np.zeros(len(self.state.participants), dtype=bool)
        return np.array(
            [a and r == 0 for a, r in zip(self.state.active, self.state.reputations, strict=True)], dtype=bool
        )

    def _commit(
        self,
        reputations: list[Any],
        removed_mask: np.ndarray,
        phis: np.ndarray,
        coefficients: np.ndarray,
        aggregate: np.ndarray,
        fixed: fixedpoint.FixedRoundOutcome | None,
    ) -> RFFLRoundResult:
        self.state.rounds_done += 1
        removed_now: list[str] = []
        for position, gone in enumerate(removed_mask):
            if gone and self.state.active[position]:
                participant = self.state.participants[position]
                self.state.active[position] = False
                self.state.removed_round[participant] = self.state.rounds_done
                removed_now.append(participant)
        self.state.reputations = list(reputations)
        self.save()
        return RFFLRoundResult(
            coefficients=coefficients,
            aggregate=aggregate,
            phis={p: float(phi) for p, phi in zip(self.state.participants, phis, strict=True)},
            reputations=self.reputations,
            removed_now=removed_now,
            active=[p for p, a in zip(self.state.participants, self.state.active, strict=True) if a],
            fixed=fixed,
        )

    def save(self) -> None:
        if self.state_path is not None:
            write_json_atomically(self.state_path, self.state.to_json())


def _normalised(values: np.ndarray) -> np.ndarray:
    total = float(values.sum())
    return values / total if total > 0 else np.zeros_like(values)
