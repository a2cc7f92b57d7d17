"""In-process federated-learning simulator (no chain, no IPFS) for benchmarks and tests.

N data owners get Dirichlet(α) shares of a built-in data set, train locally with the same
code real data owners run (client.training), some of them attack (aggregator.attacks), and
a server aggregates with the task's pipeline (robust rules + RFFL/FedCE) or with a peer
(plain FedAvg, or Flower's aggregation functions called as an independent implementation).
Per round it records test accuracy, reputations, removals, Shapley contributions and payout
shares; at the end, each honest owner's standalone accuracy (training alone) for the
fairness metric of RFFL/CFFL (Pearson correlation of payouts with standalone accuracy).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aggregator import attacks
from aggregator.fedce import FedCE
from aggregator.pipeline import RoundAggregator, build_pipeline
from aggregator.rules import UpdateBatch
from aggregator.shapley import BatchedModelEvaluator, payout_shares, round_shapley
from client.training import TrainConfig, evaluate, train_local
from marketplace.data import Dataset, dirichlet_split, load_builtin, split_holdout
from marketplace.models import ModelSpec, build_model, flatten, load_arrays, model_to_arrays, unflatten

SERVERS = ("pipeline", "fedavg", "fedavg_honest", "flwr_fedavg", "flwr_krum", "flwr_median", "flwr_trimmed")
SPLITS = ("dirichlet", "powerlaw")
PAYOUTS = ("shapley", "shapley_sum", "shapley_loss", "shapley_loss_round", "shapley_loss_gain", "reputation", "fedce")
#: how the product's clients train (client/demo.py: 5 local epochs, lr 0.1, momentum 0.9, batch 32), which the
#: robustness grid and the tests that replay its cells use instead of the lighter defaults below
CLIENT_TRAINING: dict[str, Any] = {"epochs": 5, "lr": 0.1, "momentum": 0.9, "batch_size": 32}
DEFAULT_AGGREGATION: dict[str, Any] = {
    "rules": [{"name": "clip", "gamma": 1.0}, {"name": "cosine", "threshold": 0.0}],
    "reputation": "rffl",
    "contribution": "shapley",
}


@dataclass(frozen=True)
class SimulationConfig:
    dataset: str = "digits"
    n_owners: int = 10
    dirichlet_alpha: float = 0.5
    rounds: int = 20
    seed: int = 0
    attack: str = "none"
    attacker_fraction: float = 0.0
    hidden: tuple[int, ...] = (32,)
    epochs: int = 2
    lr: float = 0.1
    batch_size: int = 16
    momentum: float = 0.0
    server: str = "pipeline"
    aggregation: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_AGGREGATION))
    standalone: bool = False
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    split: str = "dirichlet"
    powerlaw_exponent: float = 1.0
    # the pipeline's aggregate is applied times this (a server step size, Reddi et al. 2021): it changes how far
    # the model moves per round, not what RFFL scores
    server_lr: float = 1.0

    def __post_init__(self) -> None:
        if self.attack != "none" and self.attack not in attacks.ATTACK_KINDS:
            raise ValueError(f"unknown attack {self.attack!r}; expected one of {', '.join(attacks.ATTACK_KINDS)}")
        if self.server not in SERVERS:
            raise ValueError(f"unknown server {self.server!r}; expected one of {', '.join(SERVERS)}")
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; expected one of {', '.join(SPLITS)}")
        if not 0.0 <= self.attacker_fraction < 1.0:
            raise ValueError("attacker_fraction must lie in [0, 1)")
        if not (self.server_lr > 0 and np.isfinite(self.server_lr)):
            raise ValueError(f"server_lr must be a positive number, got {self.server_lr!r}")


@dataclass
class SimulationResult:
    config: dict[str, Any]
    owners: list[str]
    attackers: list[str]
    accuracy: list[float]
    final_accuracy: float
    removed_round: dict[str, int]
    reputations: dict[str, float]
    payout: dict[str, dict[str, float]]
    standalone_accuracy: dict[str, float]
    backdoor_success: float | None
    shapley_evaluations: int
    # per round, the exact/GTG Shapley value of every kept owner under each utility
    # ("accuracy", "neg_loss"), so other payout rules can be studied without rerunning
    round_values: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    # per round, v(N) − v(∅) of each utility: the change the round's aggregate made
    round_gains: dict[str, list[float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def derived_seed(*parts: object) -> int:
    """A stable 32-bit seed from any labels (independent of Python's hash randomisation)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def backdoor_trigger(dataset: str) -> attacks.BackdoorTrigger:
    if dataset == "digits":  # bottom-right 2×2 pixel block at full intensity ⇒ class 0
        return attacks.BackdoorTrigger(features=(54, 55, 62, 63), value=1.0, target=0)
    # breast cancer: the three features least correlated with the label (mean fractal dimension, texture error,
    # symmetry error; |r| ≤ 0.013) at +4σ ⇒ malignant. A large radius, texture and perimeter (the earlier trigger)
    # is malignancy's own signature: attack-free FedAvg already called 50-69% of such stamped benign rows
    # malignant, so its "success" measured the task, not the attack; here it calls none of them
    return attacks.BackdoorTrigger(features=(9, 11, 18), value=4.0, target=0)


class _Owners:
    """Owner data, honest local training and each attack's behaviour."""

    def __init__(self, config: SimulationConfig, spec: ModelSpec, train: Dataset, parts: list[np.ndarray]) -> None:
        self.config = config
        self.spec = spec
        self.ids = [f"owner{i:02d}" for i in range(config.n_owners)]
        count = round(config.attacker_fraction * config.n_owners) if config.attack != "none" else 0
        rng = np.random.default_rng(derived_seed(config.seed, "attackers"))
        self.attackers = sorted(self.ids[i] for i in rng.choice(config.n_owners, size=count, replace=False))
        self.data: dict[str, Dataset] = {}
        for owner, part in zip(self.ids, parts, strict=True):
            ds = train.subset(part)
            if owner in self.attackers and config.attack in ("label_flip", "sybil"):
                ds = Dataset(ds.X, attacks.label_flip(ds.y, spec.num_classes))
            elif owner in self.attackers and config.attack == "backdoor":
                x, y = attacks.add_backdoor(
                    ds.X,
                    ds.y,
                    backdoor_trigger(config.dataset),
                    0.5,
                    np.random.default_rng(derived_seed(config.seed, owner, "backdoor")),
                )
                ds = Dataset(x, y)
            self.data[owner] = ds

    def train(self, owner: str, theta: np.ndarray, round_index: int) -> np.ndarray:
        model = build_model(self.spec, seed=0)
        load_arrays(model, unflatten(theta, self.spec))
        cfg = TrainConfig(
            epochs=self.config.epochs,
            lr=self.config.lr,
            batch_size=self.config.batch_size,
            momentum=self.config.momentum,
            seed=derived_seed(self.config.seed, owner, round_index),
        )
        train_local(model, self.data[owner], cfg)
        return (flatten(model_to_arrays(model), self.spec) - theta).astype(np.float32)

    def round_updates(
        self, senders: list[str], theta: np.ndarray, round_index: int, previous_delta: np.ndarray
    ) -> np.ndarray:
        attack = self.config.attack
        rng = np.random.default_rng(derived_seed(self.config.seed, "attack", round_index))
        rows: dict[str, np.ndarray] = {}
        for owner in senders:
            if owner in self.attackers and attack in ("free_rider", "alie"):
                continue
            if owner in self.attackers and attack == "sybil" and owner != self.attackers[0]:
                continue
            rows[owner] = self.train(owner, theta, round_index)
        honest = [rows[o] for o in senders if o not in self.attackers]
        active_attackers = [o for o in senders if o in self.attackers]
        for owner in active_attackers:
            if attack == "free_rider":
                rows[owner] = attacks.free_rider_random(theta.size, rng)
            elif attack == "sign_flip":
                rows[owner] = attacks.sign_flip(rows[owner])
            elif attack == "scaling":
                rows[owner] = attacks.scaling(rows[owner], 10.0)
            elif attack == "gaussian":
                rows[owner] = attacks.gaussian_noise(rows[owner], 0.1, rng)
            elif attack == "alie" and honest:
                z = attacks.alie_z(len(senders), len(active_attackers))
                rows[owner] = attacks.little_is_enough(np.stack(honest), z)
            elif attack == "alie":
                rows[owner] = attacks.free_rider_zero(theta.size)
        if attack == "sybil" and active_attackers:
            leader = self.attackers[0]
            base = rows[leader] if leader in rows else self.train(leader, theta, round_index)
            copies = attacks.sybil_group(base, len(active_attackers), rng)
            for owner, row in zip(active_attackers, copies, strict=True):
                rows[owner] = row
        return np.stack([rows[o] for o in senders]).astype(np.float32)


def _flwr_aggregate(server: str, updates: np.ndarray, sizes: list[int], spec: ModelSpec, f: int) -> np.ndarray:
    """Flower's own aggregation functions, called as an independent peer on the same updates."""
    from flwr.server.strategy import aggregate as flwr_aggregate

    results = [(list(unflatten(row, spec).values()), int(size)) for row, size in zip(updates, sizes, strict=True)]
    if server == "flwr_fedavg":
        arrays = flwr_aggregate.aggregate(results)
    elif server == "flwr_krum":
        arrays = flwr_aggregate.aggregate_krum(results, num_malicious=f, to_keep=0)
    elif server == "flwr_median":
        arrays = flwr_aggregate.aggregate_median(results)
    else:
        arrays = flwr_aggregate.aggregate_trimmed_avg(results, proportiontocut=0.2)
    return np.concatenate([np.asarray(a, dtype=np.float32).reshape(-1) for a in arrays])


def powerlaw_split(labels: np.ndarray, n_owners: int, exponent: float, seed: int) -> list[np.ndarray]:
    """Shuffled rows in n parts of size ∝ (k+1)^(−exponent): RFFL/CFFL's "power-law" split.

    Classes stay mixed (each part is a uniform sample), only the data sizes differ, so an
    owner's standalone accuracy is driven by how much data it holds.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    weights = (np.arange(n_owners) + 1.0) ** -exponent
    bounds = np.concatenate([[0], np.cumsum(weights / weights.sum())]) * len(labels)
    cuts = np.round(bounds).astype(np.int64)
    return [np.sort(order[a:b]) for a, b in itertools.pairwise(cuts)]


def _test_accuracy(spec: ModelSpec, theta: np.ndarray, test: Dataset) -> float:
    model = build_model(spec, seed=0)
    load_arrays(model, unflatten(theta, spec))
    return float(evaluate(model, test)["accuracy"])


def _standalone(owners: _Owners, theta0: np.ndarray, test: Dataset, rounds: int) -> dict[str, float]:
    result = {}
    for owner in owners.ids:
        if owner in owners.attackers:
            continue
        theta = theta0.copy()
        for round_index in range(rounds):
            theta = theta + owners.train(owner, theta, round_index)
        result[owner] = _test_accuracy(owners.spec, theta, test)
    return result


def run_simulation(config: SimulationConfig, progress: Callable[[int], None] | None = None) -> SimulationResult:
    data, schema = load_builtin(config.dataset)
    train, val, test = split_holdout(data, config.val_fraction, config.test_fraction, seed=config.seed)
    if config.split == "powerlaw":
        parts = powerlaw_split(train.y, config.n_owners, config.powerlaw_exponent, seed=config.seed)
    else:
        parts = dirichlet_split(train.y, config.n_owners, config.dirichlet_alpha, seed=config.seed)
    kind = "mlp" if config.hidden else "logreg"
    spec = ModelSpec(kind, schema.num_features, schema.num_classes, tuple(config.hidden))
    owners = _Owners(config, spec, train, parts)
    theta = flatten(model_to_arrays(build_model(spec, seed=config.seed)), spec).astype(np.float32)
    theta0 = theta.copy()
    sizes = {o: len(owners.data[o]) for o in owners.ids}
    pipeline = build_pipeline(config.aggregation)
    server = RoundAggregator(pipeline) if config.server == "pipeline" else None
    evaluator = BatchedModelEvaluator(spec, val.X, val.y, metric="accuracy")
    loss_evaluator = BatchedModelEvaluator(spec, val.X, val.y, metric="neg_loss")
    fedce_tracker = FedCE()
    payout = {name: dict.fromkeys(owners.ids, 0.0) for name in PAYOUTS}
    # FedSV (Wang et al. 2020): round values are summed over rounds and shared out at the end
    # (shapley_loss_gain sums each round's loss improvement shared by positive Shapley value)
    value_sums = {name: dict.fromkeys(owners.ids, 0.0) for name in ("shapley_sum", "shapley_loss", "shapley_loss_gain")}
    accuracy: list[float] = []
    round_values: dict[str, list[dict[str, float]]] = {"accuracy": [], "neg_loss": []}
    round_gains: dict[str, list[float]] = {"accuracy": [], "neg_loss": []}
    evaluations = 0
    previous_delta = np.zeros_like(theta)
    f = len(owners.attackers)
    for round_index in range(config.rounds):
        senders = [o for o in owners.ids if server is None or server.is_active(o)]
        updates = owners.round_updates(senders, theta, round_index, previous_delta)
        round_sizes = [sizes[o] for o in senders]
        if server is not None:
            outcome = server.run(
                updates,
                senders,
                round_sizes,
                seed=derived_seed(config.seed, round_index),
                expected_attackers=f,
                model=theta,
                validation_loss=loss_evaluator.loss,
            )
            delta = (outcome.aggregate * config.server_lr).astype(np.float32)
            kept = outcome.kept
            batch = UpdateBatch.from_updates(updates, kept=kept).derive(scale=outcome.scale)
            if pipeline.contribution == "shapley" and np.any(kept):
                effective = batch.effective_rows().astype(np.float32)
                shapley_options = dict(pipeline.contribution_options)
                coalition_weights = None
                if shapley_options.pop("coalition", "mean") == "weighted":
                    # the weights the aggregate used on the (clipped) kept rows
                    scale = np.asarray(outcome.scale, dtype=np.float64)[kept]
                    coefficients = np.asarray(outcome.coefficients, dtype=np.float64)[kept]
                    coalition_weights = np.where(scale > 0, coefficients / np.where(scale > 0, scale, 1.0), 0.0)
                result = round_shapley(
                    theta,
                    effective,
                    evaluator,
                    seed=derived_seed(config.seed, round_index, "sv"),
                    weights=coalition_weights,
                    **shapley_options,
                )
                evaluations += result.evaluations
                kept_ids = [s for s, k in zip(senders, kept, strict=True) if k]
                fallback = np.array([outcome.reputations.get(s, 1.0) for s in kept_ids])
                for owner, share in zip(kept_ids, payout_shares(result.values, fallback), strict=True):
                    payout["shapley"][owner] += share / config.rounds
                for owner, value in zip(kept_ids, result.values, strict=True):
                    value_sums["shapley_sum"][owner] += float(value)
                round_values["accuracy"].append(dict(zip(kept_ids, map(float, result.values), strict=True)))
                round_gains["accuracy"].append(result.full_utility - result.empty_utility)
                loss_result = round_shapley(
                    theta,
                    effective,
                    loss_evaluator,
                    seed=derived_seed(config.seed, round_index, "sv-loss"),
                    weights=coalition_weights,
                    **shapley_options,
                )
                for owner, value in zip(kept_ids, loss_result.values, strict=True):
                    value_sums["shapley_loss"][owner] += float(value)
                # shapley_loss_gain: the round's validation-loss improvement, shared by positive
                # Shapley value (with no negative value it is the round's Shapley value itself)
                gain = max(loss_result.full_utility - loss_result.empty_utility, 0.0)
                for owner, share in zip(kept_ids, payout_shares(loss_result.values), strict=True):
                    value_sums["shapley_loss_gain"][owner] += gain * float(share)
                # shapley_loss_round: what the contract pays with metric neg_loss (equal round pools)
                for owner, share in zip(kept_ids, payout_shares(loss_result.values, fallback), strict=True):
                    payout["shapley_loss_round"][owner] += share / config.rounds
                round_values["neg_loss"].append(dict(zip(kept_ids, map(float, loss_result.values), strict=True)))
                round_gains["neg_loss"].append(loss_result.full_utility - loss_result.empty_utility)
            elif pipeline.contribution == "shapley":
                for utility in ("accuracy", "neg_loss"):
                    round_values[utility].append({})
                    round_gains[utility].append(0.0)
            if outcome.reputations:
                for owner, share in zip(
                    owners.ids,
                    payout_shares(np.array([outcome.reputations.get(o, 0.0) for o in owners.ids])),
                    strict=True,
                ):
                    payout["reputation"][owner] += share / config.rounds
            fedce_weights = fedce_tracker.step(batch, senders)
            for owner, share in zip(senders, fedce_weights, strict=True):
                payout["fedce"][owner] += share / config.rounds
        elif config.server in ("fedavg", "fedavg_honest"):
            # fedavg_honest: the oracle that knows the attackers and leaves them out (an upper
            # bound for any defence, which cannot recover the data the attackers withhold)
            honest_only = config.server == "fedavg_honest"
            excluded = set(owners.attackers) if honest_only else set()
            weights = np.array([0.0 if o in excluded else float(n) for o, n in zip(senders, round_sizes, strict=True)])
            weights = weights / weights.sum()
            delta = (weights.astype(np.float32) @ updates).astype(np.float32)
        else:
            delta = _flwr_aggregate(config.server, updates, round_sizes, spec, f)
        if not np.all(np.isfinite(delta)):
            delta = np.zeros_like(delta)
        theta = (theta + delta).astype(np.float32)
        previous_delta = delta
        accuracy.append(_test_accuracy(spec, theta, test))
        if progress is not None:
            progress(round_index)
    for name, sums in value_sums.items():
        shares = payout_shares(np.array([sums[o] for o in owners.ids]))
        payout[name] = {o: float(share) for o, share in zip(owners.ids, shares, strict=True)}
    backdoor = None
    if config.attack == "backdoor":
        trigger = backdoor_trigger(config.dataset)
        victims = test.y != trigger.target
        stamped = Dataset(attacks.stamp_trigger(test.X[victims], trigger), np.full(int(victims.sum()), trigger.target))
        backdoor = _test_accuracy(spec, theta, stamped)
    standalone = _standalone(owners, theta0, test, config.rounds) if config.standalone else {}
    return SimulationResult(
        config=asdict(config),
        owners=owners.ids,
        attackers=owners.attackers,
        accuracy=accuracy,
        final_accuracy=accuracy[-1],
        removed_round=dict(server.rffl.removed) if server is not None and server.rffl is not None else {},
        reputations=dict(server.rffl.reputations) if server is not None and server.rffl is not None else {},
        payout=payout if server is not None else {},
        standalone_accuracy=standalone,
        backdoor_success=backdoor,
        shapley_evaluations=evaluations,
        round_values=round_values if server is not None else {},
        round_gains=round_gains if server is not None else {},
    )
