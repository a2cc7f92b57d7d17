"""The task spec's choice of robust rules, reputation and contribution method, as one object.

A task publishes e.g.
    {"rules": [{"name": "clip", "gamma": 0.5}, {"name": "norm_outlier", "method": "mad"}],
     "reputation": "rffl", "contribution": "shapley"}
`build_pipeline` checks it strictly (unknown names/fields, bad values, impossible orders are
refused with a message naming the field) and `RoundAggregator` runs one float round:
rules → reputation weights → aggregate. Contributions are computed separately
(aggregator.shapley / aggregator.fedce) because they need the owner's validation set.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from aggregator.fedce import FedCE, FedCEConfig
from aggregator.history import UpdateHistory, history_path
from aggregator.reputation import RFFLConfig, RFFLReputation
from aggregator.rules import RULES, RoundContext, Rule, UpdateBatch
from aggregator.rules.base import ValidationLoss

AGGREGATING_RULES = ("median", "trimmed_mean")
REPUTATIONS = ("rffl", "fedce", "none")
CONTRIBUTIONS = ("shapley", "fedce", "none")
SHAPLEY_OPTIONS = {
    "method": str,
    "exact_max_players": int,
    "epsilon": float,
    "round_threshold": float,
    "max_permutations": int,
    "tolerance": float,
    "coalition": str,
}
SHAPLEY_COALITIONS = ("mean", "weighted")


class PipelineSpecError(ValueError):
    """The task's aggregation spec is malformed; the message names the offending field."""


@dataclass(frozen=True)
class AggregationPipeline:
    rules: tuple[Rule, ...]
    reputation: str
    reputation_options: dict[str, Any] = field(default_factory=dict)
    contribution: str = "none"
    contribution_options: dict[str, Any] = field(default_factory=dict)

    @property
    def makes_own_aggregate(self) -> bool:
        return bool(self.rules) and self.rules[-1].name in AGGREGATING_RULES

    @property
    def needs_history(self) -> bool:
        """A rule compares each sender with its previous update (RoundContext.history)."""
        return any(getattr(rule, "needs_history", False) for rule in self.rules)

    @property
    def needs_validation(self) -> bool:
        """A rule tries each update on the validation set (RoundContext.model and validation_loss)."""
        return any(getattr(rule, "needs_validation", False) for rule in self.rules)

    def filter(self, batch: UpdateBatch, ctx: RoundContext) -> FilterOutcome:
        """Run every rule in order; each sees the previous rules' mask and scale."""
        aggregate: np.ndarray | None = None
        notes: list[tuple[str, dict[str, Any]]] = []
        capped = np.zeros(batch.n, dtype=bool)
        for rule in self.rules:
            if not np.any(batch.kept):
                notes.append((rule.name, {"skipped": "no update left"}))
                continue
            result = rule.apply(batch, ctx)
            batch = batch.derive(kept=result.kept_mask, scale=result.scale)
            if result.aggregate is not None:
                aggregate = result.aggregate
            if result.capped is not None:
                capped |= result.capped
            notes.append((rule.name, result.notes))
        return FilterOutcome(batch=batch, aggregate=aggregate, notes=notes, capped=capped)

    def to_dict(self) -> dict[str, Any]:
        rules = []
        for rule in self.rules:
            entry = {"name": rule.name}
            entry.update({f.name: getattr(rule, f.name) for f in fields(rule) if f.name != "name"})  # type: ignore[arg-type]
            rules.append(entry)
        options = dict(self.reputation_options)
        if "beta" in options:
            options["beta"] = str(options["beta"])
        return {
            "rules": rules,
            "reputation": {"name": self.reputation, **options},
            "contribution": {"name": self.contribution, **self.contribution_options},
        }


@dataclass(frozen=True)
class FilterOutcome:
    batch: UpdateBatch
    aggregate: np.ndarray | None
    notes: list[tuple[str, dict[str, Any]]]
    capped: np.ndarray  # rows a rule found to be copies or boosted: scored at most as missing


def _named(entry: Any, where: str, allowed: Sequence[str]) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
        raise PipelineSpecError(f"{where} must be a name or an object with a 'name' field, got {entry!r}")
    name = entry["name"]
    if name not in allowed:
        raise PipelineSpecError(f"unknown {where} {name!r}; expected one of {', '.join(allowed)}")
    return name, {k: v for k, v in entry.items() if k != "name"}


def _build_rule(index: int, entry: Any) -> Rule:
    name, options = _named(entry, f"rules[{index}]", tuple(RULES))
    factory = RULES[name]
    accepted = {p for p in inspect.signature(factory).parameters if p != "name"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise PipelineSpecError(
            f"rules[{index}] ({name}) has unknown field(s): {', '.join(unknown)}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}"
        )
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str | None):
            raise PipelineSpecError(f"rules[{index}] ({name}) field {key!r} has an unsupported value {value!r}")
    try:
        return factory(**options)
    except (TypeError, ValueError) as error:
        raise PipelineSpecError(f"rules[{index}] ({name}): {error}") from error


def build_pipeline(spec: Mapping[str, Any]) -> AggregationPipeline:
    """Parse and check a task's aggregation spec."""
    if not isinstance(spec, Mapping):
        raise PipelineSpecError(f"aggregation spec must be an object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - {"rules", "reputation", "contribution"})
    if unknown:
        raise PipelineSpecError(f"unknown aggregation spec field(s): {', '.join(unknown)}")
    raw_rules = spec.get("rules", [])
    if not isinstance(raw_rules, list):
        raise PipelineSpecError("aggregation spec field 'rules' must be a list")
    rules = tuple(_build_rule(i, entry) for i, entry in enumerate(raw_rules))
    for position, rule in enumerate(rules):
        if rule.name in AGGREGATING_RULES and position != len(rules) - 1:
            raise PipelineSpecError(f"rule {rule.name!r} produces the aggregate and must come last")
    reputation, reputation_options = _named(spec.get("reputation", "none"), "reputation", REPUTATIONS)
    if rules and rules[-1].name in AGGREGATING_RULES and reputation != "none":
        raise PipelineSpecError(f"rule {rules[-1].name!r} makes the aggregate itself; use reputation 'none'")
    reputation_options = _check_reputation_options(reputation, reputation_options)
    contribution, contribution_options = _named(spec.get("contribution", "none"), "contribution", CONTRIBUTIONS)
    if contribution == "shapley":
        for key, value in contribution_options.items():
            expected = SHAPLEY_OPTIONS.get(key)
            if expected is None:
                raise PipelineSpecError(f"unknown shapley option {key!r}; accepted: {', '.join(SHAPLEY_OPTIONS)}")
            if isinstance(value, bool) or not isinstance(value, int | float if expected is float else expected):
                raise PipelineSpecError(f"shapley option {key!r} must be {expected.__name__}, got {value!r}")
        if contribution_options.get("method", "auto") not in ("auto", "exact", "gtg"):
            raise PipelineSpecError("shapley method must be 'auto', 'exact' or 'gtg'")
        if contribution_options.get("coalition", "mean") not in SHAPLEY_COALITIONS:
            raise PipelineSpecError(f"shapley coalition must be one of {', '.join(SHAPLEY_COALITIONS)}")
    elif contribution_options:
        raise PipelineSpecError(f"contribution {contribution!r} takes no options")
    return AggregationPipeline(rules, reputation, reputation_options, contribution, contribution_options)


def _check_reputation_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    if name == "rffl":
        allowed = {"alpha", "beta", "missing_score", "removal_rounds"}
    elif name == "fedce":
        allowed = {"data_weight", "combine"}
    else:
        allowed = set()
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise PipelineSpecError(f"reputation {name!r} has unknown field(s): {', '.join(unknown)}")
    try:
        if name == "rffl":
            if "beta" in options:
                options = {**options, "beta": Fraction(str(options["beta"]))}
            RFFLConfig(**options)
        elif name == "fedce":
            FedCEConfig(**options)
    except (TypeError, ValueError, ZeroDivisionError) as error:
        raise PipelineSpecError(f"reputation {name!r}: {error}") from error
    return options


@dataclass(frozen=True)
class RoundOutcome:
    """One aggregated round: who was kept, effective coefficients on the raw rows, the aggregate."""

    kept: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    aggregate: np.ndarray
    filter_notes: list[tuple[str, dict[str, Any]]]
    phis: dict[str, float] = field(default_factory=dict)
    reputations: dict[str, float] = field(default_factory=dict)
    removed_now: list[str] = field(default_factory=list)


class RoundAggregator:
    """Runs a pipeline round after round, holding the reputation state (float research path)."""

    def __init__(self, pipeline: AggregationPipeline, state_path: Path | str | None = None) -> None:
        self.pipeline = pipeline
        self.rffl: RFFLReputation | None = None
        self.fedce: FedCE | None = None
        self.history = UpdateHistory(history_path(state_path) if pipeline.needs_history else None)
        if pipeline.reputation == "rffl":
            self.rffl = RFFLReputation(RFFLConfig(**pipeline.reputation_options), state_path=state_path)
        elif pipeline.reputation == "fedce":
            self.fedce = FedCE(FedCEConfig(**pipeline.reputation_options))

    def is_active(self, sender: str) -> bool:
        return self.rffl is None or not self.rffl.state.participants or self.rffl.is_active(sender)

    def run(
        self,
        updates: np.ndarray,
        senders: Sequence[str],
        data_sizes: Sequence[int],
        seed: int = 0,
        expected_attackers: int | None = None,
        model: np.ndarray | None = None,
        validation_loss: ValidationLoss | None = None,
    ) -> RoundOutcome:
        """Filter, weight and aggregate one round of float updates (rows of removed senders are ignored);
        `model` (the global parameters the updates start from) and `validation_loss` serve rules that try an
        update on the validation set."""
        senders = list(senders)
        sizes = np.asarray(data_sizes, dtype=np.float64)
        active = np.array([self.is_active(s) for s in senders])
        reference = None
        if self.rffl is not None:
            # the filters' reference aggregate uses RFFL's own weights, so the fused pass is shared
            self.rffl.start(senders)
            reference = self.rffl.base_weights(senders, [int(s) for s in sizes])
        history = self.history.updates if self.pipeline.needs_history else None
        ctx = RoundContext(tuple(senders), sizes, reference, expected_attackers, seed, history, model, validation_loss)
        batch = UpdateBatch.from_updates(updates, kept=active)
        outcome = self.pipeline.filter(batch, ctx)
        if self.pipeline.needs_history:
            self.history.record(senders, updates, active, batch.cache.raw_sq_norms)
        filtered = outcome.batch
        if self.rffl is not None:
            result = self.rffl.step(filtered, senders, [int(s) for s in sizes], capped=outcome.capped)
            return RoundOutcome(
                filtered.kept,
                filtered.scale,
                result.coefficients,
                result.aggregate,
                outcome.notes,
                result.phis,
                result.reputations,
                result.removed_now,
            )
        if self.fedce is not None:
            weights = self.fedce.step(filtered, senders)
        elif outcome.aggregate is not None:
            return RoundOutcome(filtered.kept, filtered.scale, np.zeros(len(senders)), outcome.aggregate, outcome.notes)
        else:
            weights = np.where(filtered.kept, sizes, 0.0)
            weights = weights / weights.sum() if weights.sum() > 0 else weights
        coefficients = filtered.effective_coefficients(weights)
        aggregate, _ = filtered.combine_and_dots(weights)
        return RoundOutcome(filtered.kept, filtered.scale, coefficients, aggregate, outcome.notes)
