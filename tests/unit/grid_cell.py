"""One robustness-grid cell replayed in a unit test: real PyTorch training as the product's clients train, a
share of attacking owners, and the rules under test (no contributions, which these tests do not look at)."""

from __future__ import annotations

from typing import Any

from aggregator.simulation import CLIENT_TRAINING, SimulationConfig, SimulationResult, run_simulation

HIDDEN = {"digits": (32,), "breast_cancer": (16,)}  # the grid's MLPs (benchmarks/robustness.py)


def replay_cell(dataset: str, *, alpha: float, rounds: int, seed: int, attack: str, fraction: float,
                rules: list[dict[str, Any]], reputation: dict[str, Any]) -> SimulationResult:  # fmt: skip
    """Run `rounds` rounds of the cell under `rules` and `reputation`."""
    config = SimulationConfig(
        dataset=dataset, dirichlet_alpha=alpha, hidden=HIDDEN[dataset], rounds=rounds, seed=seed, attack=attack,
        attacker_fraction=fraction, aggregation={"rules": rules, "reputation": reputation, "contribution": "none"},
        **CLIENT_TRAINING,
    )  # fmt: skip
    return run_simulation(config)
