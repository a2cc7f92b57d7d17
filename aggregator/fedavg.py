"""Plain FedAvg (McMahan et al., 2017): the global model moves by the sample-weighted mean update."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def sample_weights(num_samples: Sequence[int]) -> np.ndarray:
    """w_i = n_i / Σ n_j."""
    counts = np.asarray(num_samples, dtype=np.float64)
    if counts.size == 0 or counts.sum() <= 0:
        raise ValueError("FedAvg needs at least one update with a positive sample count")
    return counts / counts.sum()


def apply_weighted_updates(
    global_model: Mapping[str, np.ndarray], updates: Sequence[Mapping[str, np.ndarray]], weights: np.ndarray
) -> dict[str, np.ndarray]:
    """θ' = θ + Σ_i w_i Δ_i, accumulated in float64 and stored as float32."""
    if len(updates) != len(weights):
        raise ValueError(f"{len(updates)} updates but {len(weights)} weights")
    result: dict[str, np.ndarray] = {}
    for name, value in global_model.items():
        total = np.zeros(value.shape, dtype=np.float64)
        for update, weight in zip(updates, weights, strict=True):
            total += weight * update[name]
        result[name] = (value.astype(np.float64) + total).astype(np.float32)
    return result
