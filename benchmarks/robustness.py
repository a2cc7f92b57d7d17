"""Robustness, fairness and Shapley-accuracy benchmark of the aggregator (issue 3's targets).

Grid: data set × Dirichlet α × attack × attacker fraction × seed, 10 data owners, 20 rounds.
For every cell: final test accuracy relative to attack-free FedAvg (same data set, α, seed),
share of attackers and of honest owners removed by RFFL, and fairness (Pearson correlation,
over honest owners, between total payout share and standalone accuracy) for every payout rule
(Shapley on validation accuracy or loss, per round or summed, gain-weighted; reputation). Peers:
our FedAvg and Flower's aggregation functions (FedAvg, Krum, FedMedian, FedTrimmedAvg) on
the same owners and attacks. Shapley accuracy: GTG-Shapley against exact values on real
rounds with n = 10. Prints tables and writes benchmarks/results/robustness.json.

Owners train as the product's clients do (5 local epochs, lr 0.1, momentum 0.9, batch 32;
--epochs/--lr/--momentum/--batch-size change it); the pipeline is spec v11 by default (--spec).

    python benchmarks/robustness.py --workers 2 --coalition weighted  # full grid (7-10 min on 2 cores)
    python benchmarks/robustness.py --quick    # smoke run (≈ 1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.attacks import ATTACK_KINDS  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"
HIDDEN = {"digits": (32,), "breast_cancer": (16,)}
GAMMA = {"digits": 1.0, "breast_cancer": 0.5}
PEERS = ("fedavg_honest", "fedavg", "flwr_fedavg", "flwr_krum", "flwr_median", "flwr_trimmed")


CLASSES = {"digits": 10, "breast_cancer": 2}
FEATURES = {"digits": 64, "breast_cancer": 30}
# settings that shape every run of a grid (restored by --resummarise)
GRID_ARGUMENTS = (
    "spec",
    "gamma",
    "beta",
    "removal_rounds",
    "rffl_alpha",
    "server_lr",
    "coalition",
    "epochs",
    "lr",
    "momentum",
    "batch_size",
)
SPEC_VERSIONS = ("v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12")
RFFL_ALPHA = 0.95  # every version; two-class variants use BINARY_RFFL_ALPHA
# v6 (ten classes): an update over 3 × the round's median norm is dropped and scored as missing
BOOSTED_NORMS = {"name": "norm_outlier", "method": "ratio", "k": 3.0, "side": "upper", "outlier_score": "capped"}
# v7 (ten classes): an update the round's majority does not point along with (peer support under
# median − 5·max(1.4826·MAD, 0.05)) is dropped and scored as missing
PEER_SUPPORT = {"name": "peer_support", "k": 5.0, "min_spread": 0.05, "outlier_score": "capped"}
# v8 (every task): an update whose cosine to its sender's previous update is under 0.5 (fresh noise
# in place of training) is dropped and scored as missing
CONSISTENT = {"name": "consistency", "threshold": 0.5, "outlier_score": "capped"}
# v9 (ten classes): the norm rule compares ‖Δ_i‖ / (n_i / median n)^0.5, so an owner with more data (more
# local steps, longer honest updates) is not taken for a boosted one
SIZED_NORMS = {**BOOSTED_NORMS, "size_exponent": 0.5}
# v10 (every task): what the filters drop, and what nobody sent, scores min(cos, -0.25) in RFFL, not min(cos, 0)
DROPPED_SCORE = -0.25
# v11 (two classes): an update whose full step does worse on the validation set than the best point on its own
# ray by more than 1.5 × the model's loss (a boosted one) is dropped and scored as missing
OVERSHOOT = {"name": "overshoot", "threshold": 1.5, "outlier_score": "capped"}
# v12 (ten classes): an update whose share on some input feature's first-layer weights lies over 10 robust σ above the
# round's median share (a backdoor trigger's pixels) is dropped and scored as missing
FEATURE_OUTLIER = {"name": "feature_outlier", "k": 10.0, "outlier_score": "capped"}
# v4 and later on a two-class task: no cosine filter and a slower reputation (α = 0.98), see aggregation_spec
TWO_CLASS_VARIANT_FROM = 4
BINARY_RFFL_ALPHA = 0.98
# how data owners train, as the product's clients do (client/demo.py: 5 epochs, lr 0.1,
# momentum 0.9, batch 32); the v1-v3 results used the simulator's lighter default (2 epochs,
# batch 16, no momentum), far from converged after 20 rounds. The same as aggregator.simulation.CLIENT_TRAINING,
# written out so that this parent process does not import torch (the workers import the simulator)
TRAINING = {"epochs": 5, "lr": 0.1, "momentum": 0.9, "batch_size": 32}


def aggregation_spec(
    dataset: str,
    version: str = "v12",
    gamma: float | None = None,
    beta: str = "1/3",
    rffl_alpha: float | None = None,
    coalition: str = "mean",
    removal_rounds: int | None = None,
) -> dict[str, Any]:
    """The task's aggregation spec per pipeline version.

    v1: MAD → clip → cosine(weighted mean) → RFFL(α 0.95); v2: near-duplicate → clip →
    cosine(weighted) → RFFL; v3: … cosine(median) → RFFL. v4 = v3 on a task with more than two
    classes; on a two-class task near-duplicate → clip → RFFL(α 0.98) with no per-round cosine
    filter: with label-skewed owners the honest holders of the minority class point away from
    the crowd, the filter drops them every round and RFFL (α 0.95) removes them, and the model
    collapses to the majority class (breast cancer, α = 0.5, seed 2: 0.63 accuracy). Sign- and
    label-flippers score φ ≈ −1 and still reach zero reputation at α = 0.98; on ten classes the
    filter and the faster α = 0.95 are what remove free-riders (φ ≈ 0) within 20 rounds.
    v5 = v4 with near-duplicate twins scored no better than a missing update (φ = min(cos, 0)), so
    a "little is enough" group (one shared vector near the honest mean) loses reputation. v6 = v5
    with, on more than two classes, a norm filter before clipping: an update over 3 × the round's
    median norm (a boosted or noise-laden one, which clipping would turn into an honest-looking
    direction) is dropped and scored like a copy. Not on two classes: there honest norms spread
    over more than 10× (one-class shards), past the scaled attackers'. v7 = v6 with, on more
    than two classes, a peer-support filter after the norm filter: a colluding group (a backdoor
    trigger shared by 30% of the owners) resembles itself more than the honest majority, and
    its members' ⌊n/2⌋-th highest cosine to the others falls below the round's band; dropped
    rows score like a copy. Not on two classes, where it removed nobody more and cost honest
    owners. v8 = v7 with, on every task, a consistency filter first: an update whose cosine to
    its sender's previous update is under 0.5 (fresh noise, not training on a fixed data set) is
    dropped and scored like a copy. Such an update, clipped and kept, raised its own cosine to the
    aggregate it was part of close to the honest ones (breast cancer), so RFFL never removed it.
    v9 = v8 with the norm rule (ten classes) judging ‖Δ_i‖ / (n_i / median n)^0.5: local training
    takes more steps on more data, and on a power-law split the plain rule removed the owner with
    5.4 × the median's rows in every seed.
    v10 = v9 with RFFL's `missing_score` at −0.25: a dropped row (and an owner that sent nothing)
    scores min(cos, −0.25). At α = 0.98 a score of 0 lowers a reputation too slowly for 20 rounds:
    on breast cancer free-riders, noise owners and a-little-is-enough groups left in rounds 14–20,
    and in one seed of five not at all; at −0.25 they leave by round 10.
    v11 = v10 with, on two classes, an overshoot filter before clipping: an update whose full step does worse on
    the validation set than the best point on its own ray by more than 1.5 × the model's validation loss (a boosted
    update, which clipping turns into an honest-looking one) is dropped and scored like a copy. Not on ten
    classes: there a label-skewed honest shard's step overshoots the balanced validation set too, and the rule
    removed 23-42% of the honest owners at α = 0.5.
    v12 = v11 with, on ten classes, an input-feature outlier filter after peer support: an update whose share on
    some input feature's first-layer weights lies over 10 robust σ above the round's median share (a backdoor
    trigger stamped on pixels the task's images leave blank) is dropped and scored like a copy.
    """
    if version not in SPEC_VERSIONS:
        raise ValueError(f"unknown spec version {version!r}; known: {', '.join(SPEC_VERSIONS)}")
    gamma = GAMMA[dataset] if gamma is None else gamma
    number = int(version.removeprefix("v"))  # each version builds on the one before
    two_class_variant = number >= TWO_CLASS_VARIANT_FROM and CLASSES[dataset] <= 2
    if rffl_alpha is None:
        rffl_alpha = BINARY_RFFL_ALPHA if two_class_variant else RFFL_ALPHA
    if version == "v1":
        rules: list[dict[str, Any]] = [
            {"name": "norm_outlier", "method": "mad", "k": 3.0, "side": "upper"},
            {"name": "clip", "gamma": gamma},
            {"name": "cosine", "threshold": 0.0},
        ]
    else:
        # duplicates first, so identical attacker rows cannot skew any statistic; no MAD norm
        # filter: clipping already bounds norms, and at α = 0.5 the largest honest data sets
        # give the largest norms, which the MAD band (centred on the crowd) would drop
        duplicate: dict[str, Any] = {"name": "near_duplicate", "threshold": 0.99}
        if number >= 5:
            duplicate["twin_score"] = "capped"
        rules = [duplicate, {"name": "clip", "gamma": gamma}]
        if number >= 6 and not two_class_variant:
            rules.insert(1, SIZED_NORMS if number >= 9 else BOOSTED_NORMS)
        if number >= 7 and not two_class_variant:
            rules.insert(2, PEER_SUPPORT)
        if number >= 8:
            rules.insert(0, CONSISTENT)
        if number >= 11 and two_class_variant:
            rules.insert(len(rules) - 1, OVERSHOOT)  # after the copies are gone, before clipping hides the length
        if number >= 12 and not two_class_variant:
            layout = {"inputs": FEATURES[dataset], "units": HIDDEN[dataset][0]}
            rules.insert(len(rules) - 1, {**FEATURE_OUTLIER, **layout})  # after peer support, before clipping
        if not two_class_variant:
            reference = "weighted" if version == "v2" else "median"
            rules.append({"name": "cosine", "threshold": 0.0, "reference": reference})
    reputation: dict[str, Any] = {"name": "rffl", "alpha": rffl_alpha, "beta": beta}
    if number >= 10:
        reputation["missing_score"] = DROPPED_SCORE
    if removal_rounds is not None:
        reputation["removal_rounds"] = removal_rounds
    return {
        "rules": rules,
        "reputation": reputation,
        "contribution": {"name": "shapley", "method": "exact", "coalition": coalition},
    }


def _job(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from aggregator.simulation import SimulationConfig, run_simulation

    config = SimulationConfig(
        dataset=job["dataset"],
        dirichlet_alpha=job["alpha"],
        rounds=job["rounds"],
        seed=job["seed"],
        attack=job["attack"],
        attacker_fraction=job["fraction"],
        hidden=HIDDEN[job["dataset"]],
        server=job["server"],
        aggregation=aggregation_spec(
            job["dataset"],
            job.get("spec", "v7"),
            gamma=job.get("gamma"),
            beta=job.get("beta", "1/3"),
            rffl_alpha=job.get("rffl_alpha"),
            coalition=job.get("coalition", "mean"),
            removal_rounds=job.get("removal_rounds"),
        ),
        epochs=job.get("epochs", 2),
        lr=job.get("lr", 0.1),
        batch_size=job.get("batch_size", 16),
        momentum=job.get("momentum", 0.0),
        standalone=job.get("standalone", False),
        split=job.get("split", "dirichlet"),
        server_lr=job.get("server_lr", 1.0),  # the simulator applies it to the pipeline's aggregate only
    )
    started = time.perf_counter()
    result = run_simulation(config).to_json()
    result["seconds"] = time.perf_counter() - started
    result["job"] = job
    return result


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _shapley_accuracy(
    dataset: str,
    seeds: Sequence[int],
    rounds: Sequence[int],
    training: dict[str, Any] | None = None,
    metrics: Sequence[str] = ("accuracy",),
) -> list[dict[str, Any]]:
    """GTG vs exact on real rounds: θ_t and the 10 honest updates of an attack-free run, per utility.

    A round where GTG's between-round truncation fires (v(N) = v(∅), common for accuracy on a
    small validation set once the model has converged) gives all-zero GTG values: Spearman is
    undefined there (NaN) and the row says `round_truncated`. Rank agreement is Spearman (the
    headline) and Kendall tau-b (tie-aware: many near-tied honest owners make rank correlation
    noisy); `mae` is the mean absolute error. Each row holds the default GTG estimator and, with
    the suffix `_paper`, Liu et al.'s original (guided walks, ε = 0.001) on the same round and seed.
    """
    import torch
    from scipy.stats import kendalltau, spearmanr

    torch.set_num_threads(2)
    from aggregator import simulation as sim
    from aggregator.shapley import BatchedModelEvaluator, CoalitionUtility, exact_shapley, gtg_shapley
    from marketplace.data import dirichlet_split, load_builtin, split_holdout
    from marketplace.models import ModelSpec, build_model, flatten, model_to_arrays

    rows = []
    for seed in seeds:
        config = sim.SimulationConfig(
            dataset=dataset, seed=seed, hidden=HIDDEN[dataset], server="fedavg", **(training or {})
        )
        data, schema = load_builtin(dataset)
        train, val, _ = split_holdout(data, config.val_fraction, config.test_fraction, seed=seed)
        parts = dirichlet_split(train.y, config.n_owners, config.dirichlet_alpha, seed=seed)
        spec = ModelSpec("mlp", schema.num_features, schema.num_classes, HIDDEN[dataset])
        owners = sim._Owners(config, spec, train, parts)
        theta = flatten(model_to_arrays(build_model(spec, seed=seed)), spec).astype(np.float32)
        evaluators = {metric: BatchedModelEvaluator(spec, val.X, val.y, metric=metric) for metric in metrics}
        sizes = np.array([len(owners.data[o]) for o in owners.ids], dtype=np.float32)
        for round_index in range(max(rounds) + 1):
            updates = owners.round_updates(owners.ids, theta, round_index, np.zeros_like(theta))
            for metric, evaluator in evaluators.items() if round_index in rounds else ():
                started = time.perf_counter()
                exact = exact_shapley(CoalitionUtility(theta, updates, evaluator))
                exact_seconds = time.perf_counter() - started
                gtg_seed = sim.derived_seed(seed, round_index)
                started = time.perf_counter()
                gtg = gtg_shapley(CoalitionUtility(theta, updates, evaluator), seed=gtg_seed)
                gtg_seconds = time.perf_counter() - started
                paper = gtg_shapley(
                    CoalitionUtility(theta, updates, evaluator), seed=gtg_seed, sampling="guided", estimator="walk"
                )
                row = {
                    "dataset": dataset,
                    "metric": metric,
                    "seed": seed,
                    "round": round_index,
                    "round_truncated": gtg.round_truncated,
                    "mean_abs_exact": float(np.mean(np.abs(exact.values))),
                    "exact_evaluations": exact.evaluations,
                    "exact_seconds": exact_seconds,
                    "gtg_seconds": gtg_seconds,
                }
                for suffix, result in (("", gtg), ("_paper", paper)):
                    varied = np.std(result.values) > 0
                    row |= {
                        f"spearman{suffix}": float(spearmanr(exact.values, result.values).statistic)
                        if varied
                        else float("nan"),
                        f"kendall{suffix}": float(kendalltau(exact.values, result.values).statistic)
                        if varied
                        else float("nan"),
                        f"mae{suffix}": float(np.mean(np.abs(exact.values - result.values))),
                        f"gtg_evaluations{suffix}": result.evaluations,
                        f"permutations{suffix}": result.permutations,
                    }
                rows.append(row)
            theta = theta + (sizes / sizes.sum()) @ updates
    return rows


def summarise_shapley_accuracy(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per data set and metric: mean/min rank agreement, MAE and evaluations (default vs paper GTG).

    Rounds where between-round truncation fired (all-zero GTG values, Spearman undefined) are left
    out of the rank statistics and counted in `truncated`.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["dataset"], row["metric"])].append(row)
    out = []
    for (dataset, metric), members in groups.items():
        ranked = [r for r in members if not r["round_truncated"]]
        for suffix, label in (("", "gtg"), ("_paper", "gtg_paper")):
            if not ranked or f"spearman{suffix}" not in ranked[0]:
                continue
            rho = [r[f"spearman{suffix}"] for r in ranked]
            evaluations = [r[f"gtg_evaluations{suffix}"] for r in ranked]
            out.append(
                {
                    "dataset": dataset,
                    "metric": metric,
                    "estimator": label,
                    "rounds": len(ranked),
                    "truncated": len(members) - len(ranked),
                    "spearman_mean": float(np.mean(rho)),
                    "spearman_min": float(np.min(rho)),
                    "kendall_mean": float(np.mean([r[f"kendall{suffix}"] for r in ranked])),
                    "mae_mean": float(np.mean([r[f"mae{suffix}"] for r in ranked])),
                    "relative_mae": float(
                        np.mean([r[f"mae{suffix}"] / r["mean_abs_exact"] for r in ranked if r["mean_abs_exact"] > 0])
                    ),
                    "evaluations_mean": float(np.mean(evaluations)),
                    "evaluations_max": int(np.max(evaluations)),
                    "exact_evaluations": int(ranked[0]["exact_evaluations"]),
                }
            )
    return out


def derived_payouts(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """The run's payouts plus the per-round loss-Shapley rule (equal round pools, the contract's
    split with metric neg_loss) rebuilt from the recorded round values when the run predates it."""
    payout = dict(run.get("payout") or {})
    rounds = (run.get("round_values") or {}).get("neg_loss")
    if payout and rounds and "shapley_loss_round" not in payout:
        from aggregator.shapley import payout_shares

        paid = dict.fromkeys(run["owners"], 0.0)
        for values in rounds:
            owners = list(values)
            if owners:
                for owner, share in zip(owners, payout_shares(np.array([values[o] for o in owners])), strict=True):
                    paid[owner] += float(share) / len(rounds)
        payout["shapley_loss_round"] = paid
    return payout


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    baseline: dict[tuple, float] = {}
    standalone: dict[tuple, dict[str, float]] = {}
    for run in runs:
        job = run["job"]
        if job["server"] == "fedavg" and job["attack"] == "none":
            key = (job["dataset"], job.get("split", "dirichlet"), job["alpha"], job["seed"])
            baseline[key] = run["final_accuracy"]
            standalone[key] = run["standalone_accuracy"]
    cells: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        job = run["job"]
        split = job.get("split", "dirichlet")
        cells[(job["dataset"], split, job["alpha"], job["attack"], job["fraction"], job["server"])].append(run)
    table = []
    for (dataset, split, alpha, attack, fraction, server), group in sorted(cells.items()):
        ratios, acc, att_removed, honest_removed, backdoor = [], [], [], [], []
        fairness: dict[str, list[float | None]] = defaultdict(list)
        spread: list[float] = []
        for run in group:
            job = run["job"]
            key = (dataset, split, alpha, job["seed"])
            acc.append(run["final_accuracy"])
            if key in baseline and baseline[key] > 0:
                ratios.append(run["final_accuracy"] / baseline[key])
            attackers = set(run["attackers"])
            honest = [o for o in run["owners"] if o not in attackers]
            if server == "pipeline":
                removed = set(run["removed_round"])
                if attackers:
                    att_removed.append(len(removed & attackers) / len(attackers))
                honest_removed.append(len(removed & set(honest)) / len(honest))
                alone = standalone.get(key, {})
                rated = [o for o in honest if o in alone]
                if rated:
                    spread.append(float(np.std([alone[o] for o in rated])))
                for kind, paid in derived_payouts(run).items():
                    fairness[kind].append(_pearson([paid[o] for o in rated], [alone[o] for o in rated]))
            if run["backdoor_success"] is not None:
                backdoor.append(run["backdoor_success"])

        def finite(values: list[float | None]) -> list[float]:
            return [v for v in values if v is not None and np.isfinite(v)]

        def mean(values: list[float | None]) -> float | None:
            clean = finite(values)
            return float(np.mean(clean)) if clean else None

        def seed_range(values: list[float | None]) -> list[float] | None:
            clean = finite(values)
            return [float(min(clean)), float(max(clean))] if clean else None

        table.append(
            {
                "dataset": dataset,
                "split": split,
                "alpha": alpha,
                "attack": attack,
                "fraction": fraction,
                "server": server,
                "runs": len(group),
                "accuracy": mean(acc),
                "ratio_to_fedavg": mean(ratios),
                "min_ratio": float(min(ratios)) if ratios else None,
                "attackers_removed": mean(att_removed),
                "honest_removed": mean(honest_removed),
                **{f"fairness_{kind}": mean(values) for kind, values in sorted(fairness.items())},
                # one seed's correlation over 8-10 honest owners is noisy: the mean's spread, seed by seed
                **({"fairness_seed_range": {kind: seed_range(values) for kind, values in sorted(fairness.items())}}
                   if fairness else {}),
                "standalone_std": mean(spread),
                "backdoor_success": mean(backdoor),
            }
        )
    return {"cells": table}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(title: str, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*[_fmt(row.get(c)) for c in columns])
        Console(width=200).print(table)
    except ImportError:  # plain text fallback
        print(title)
        print(" | ".join(columns))
        for row in rows:
            print(" | ".join(_fmt(row.get(c)) for c in columns))


def build_jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = []
    for dataset in args.datasets:
        for alpha in args.alphas:
            for seed in range(args.seeds):
                base = {"dataset": dataset, "alpha": alpha, "seed": seed, "rounds": args.rounds, "spec": args.spec}
                base["split"] = args.split
                base.update(epochs=args.epochs, lr=args.lr, momentum=args.momentum, batch_size=args.batch_size)
                base.update(beta=args.beta, rffl_alpha=args.rffl_alpha, coalition=args.coalition)
                base["removal_rounds"] = args.removal_rounds
                base["server_lr"] = args.server_lr
                if args.gamma is not None:
                    base["gamma"] = args.gamma
                jobs.append({**base, "attack": "none", "fraction": 0.0, "server": "fedavg", "standalone": True})
                jobs.append({**base, "attack": "none", "fraction": 0.0, "server": "pipeline"})
                for attack in args.attacks:
                    for fraction in args.fractions:
                        jobs.append({**base, "attack": attack, "fraction": fraction, "server": "pipeline"})
                        if fraction == max(args.fractions) and alpha == args.alphas[0] and seed < args.peer_seeds:
                            for peer in args.peers:
                                jobs.append({**base, "attack": attack, "fraction": fraction, "server": peer})
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny grid for a smoke run")
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--alphas", nargs="+", type=float, default=[0.5, 100.0])
    parser.add_argument("--attacks", nargs="+", default=list(ATTACK_KINDS), choices=list(ATTACK_KINDS))
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.2, 0.3])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--peer-seeds", type=int, default=3, help="seeds for the peer strategies (30%% cells)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shapley-rounds", nargs="+", type=int, default=[0, 4, 9])
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--spec", choices=SPEC_VERSIONS, default="v12", help="aggregation pipeline version")
    parser.add_argument("--gamma", type=float, help=f"clip norm Γ (default per data set: {GAMMA})")
    parser.add_argument("--beta", default="1/3", help="RFFL removal threshold β (a task setting)")
    parser.add_argument(
        "--removal-rounds",
        type=int,
        help="RFFL removes owners in rounds 1..N only (a task setting; default every round)",
    )
    parser.add_argument("--rffl-alpha", type=float, help="RFFL reputation memory α (default per spec version)")
    parser.add_argument("--server-lr", type=float, default=1.0,
                        help="multiply the pipeline's aggregate by this before applying it (a server step size)")
    parser.add_argument("--coalition", choices=("mean", "weighted"), default="mean", help="Shapley sub-model")
    parser.add_argument("--epochs", type=int, default=TRAINING["epochs"], help="owners' local epochs per round")
    parser.add_argument("--lr", type=float, default=TRAINING["lr"])
    parser.add_argument("--momentum", type=float, default=TRAINING["momentum"])
    parser.add_argument("--batch-size", type=int, default=TRAINING["batch_size"])
    parser.add_argument("--skip-shapley-accuracy", action="store_true")
    parser.add_argument("--shapley-seeds", type=int, default=2, help="seeds for GTG vs exact")
    parser.add_argument(
        "--shapley-metrics", nargs="+", default=["accuracy", "neg_loss"], choices=["accuracy", "neg_loss"]
    )
    parser.add_argument(
        "--resummarise",
        type=Path,
        help="re-summarise the runs of an existing results file without simulating (GTG vs exact is recomputed "
        "unless --skip-shapley-accuracy, which keeps the file's rows)",
    )
    parser.add_argument(
        "--split", choices=("dirichlet", "powerlaw"), default="dirichlet", help="owner data split (RFFL/CFFL: powerlaw)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.alphas, args.seeds, args.rounds = ["digits"], [0.5], 1, 6
        args.attacks, args.fractions, args.peer_seeds, args.shapley_rounds = ["sign_flip", "free_rider"], [0.3], 1, [0]
    previous: dict[str, Any] | None = None
    if args.resummarise is not None:
        # re-analyse a results file (e.g. a new payout rule from the recorded round values), no reruns
        previous = json.loads(args.resummarise.read_text())
        grid_keys = set(GRID_ARGUMENTS) | {"datasets", "alphas", "attacks", "fractions", "seeds", "peer_seeds"}
        for key, value in previous["arguments"].items():
            if key in grid_keys | {"rounds", "peers", "workers", "quick", "split"}:
                setattr(args, key, value)
        runs, grid_seconds = previous["runs"], previous["grid_seconds"]
    else:
        jobs = build_jobs(args)
        started = time.perf_counter()
        print(f"running {len(jobs)} simulations on {args.workers} worker(s)...", flush=True)
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            runs = list(pool.map(_job, jobs, chunksize=1))
        grid_seconds = time.perf_counter() - started
    summary = summarise(runs)
    pipeline_rows = [c for c in summary["cells"] if c["server"] == "pipeline"]
    specs = {
        d: aggregation_spec(d, args.spec, args.gamma, args.beta, args.rffl_alpha, args.coalition, args.removal_rounds)
        for d in args.datasets
    }
    training = {k: getattr(args, k) for k in TRAINING}
    described = "; ".join(
        f"{d}: {' → '.join(r['name'] for r in spec['rules'])} → RFFL(α {spec['reputation']['alpha']})"
        for d, spec in specs.items()
    )
    print_table(
        f"fedmarket pipeline {args.spec} ({described}; exact Shapley payouts)",
        pipeline_rows,
        [
            "dataset",
            "split",
            "alpha",
            "attack",
            "fraction",
            "runs",
            "accuracy",
            "ratio_to_fedavg",
            "min_ratio",
            "attackers_removed",
            "honest_removed",
            "fairness_shapley",
            "fairness_shapley_sum",
            "fairness_shapley_loss",
            "fairness_shapley_loss_round",
            "fairness_shapley_loss_gain",
            "fairness_reputation",
            "standalone_std",
            "backdoor_success",
        ],
    )
    peer_cells = [c for c in summary["cells"] if c["fraction"] == max(args.fractions) and c["alpha"] == args.alphas[0]]
    by_attack: dict[tuple, dict[str, Any]] = defaultdict(dict)
    for cell in peer_cells:
        row = by_attack[(cell["dataset"], cell["attack"])]
        row.update({"dataset": cell["dataset"], "attack": cell["attack"], cell["server"]: cell["ratio_to_fedavg"]})
    print_table(
        f"accuracy / attack-free FedAvg at {max(args.fractions):.0%} attackers, α={args.alphas[0]} (peers)",
        list(by_attack.values()),
        ["dataset", "attack", "pipeline", *PEERS],
    )
    shapley_rows = list(previous["shapley_accuracy"]) if previous is not None and args.skip_shapley_accuracy else []
    for dataset in [] if args.skip_shapley_accuracy else args.datasets:
        seeds = list(range(min(args.seeds, args.shapley_seeds)))
        shapley_rows += _shapley_accuracy(dataset, seeds, args.shapley_rounds, training, args.shapley_metrics)
    print_table(
        "GTG-Shapley vs exact (n = 10, 2^10 = 1024 coalitions)",
        shapley_rows,
        [
            "dataset",
            "metric",
            "seed",
            "round",
            "spearman",
            "kendall",
            "mae",
            "mean_abs_exact",
            "gtg_evaluations",
            "permutations",
            "spearman_paper",
            "mae_paper",
            "gtg_evaluations_paper",
            "exact_evaluations",
            "exact_seconds",
            "gtg_seconds",
        ],
    )
    shapley_summary = summarise_shapley_accuracy(shapley_rows)
    print_table(
        "GTG-Shapley vs exact per data set and metric (gtg: antithetic + stratified; gtg_paper: Liu et al.)",
        shapley_summary,
        [
            "dataset",
            "metric",
            "estimator",
            "rounds",
            "truncated",
            "spearman_mean",
            "spearman_min",
            "kendall_mean",
            "mae_mean",
            "relative_mae",
            "evaluations_mean",
            "evaluations_max",
            "exact_evaluations",
        ],
    )
    payload = {
        "benchmark": "robustness",
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "owner_training": training,
        "aggregation_specs": specs,
        "grid_seconds": grid_seconds,
        "summary": summary,
        "shapley_accuracy": shapley_rows,
        "shapley_accuracy_summary": shapley_summary,
        "runs": [{k: v for k, v in run.items() if k != "config"} for run in runs],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(payload, indent=1, default=float))
    print(f"wrote {args.output} ({grid_seconds:.0f} s for the grid)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
