"""Data-owner behaviours for simulations and tests: free-riders and poisoning attacks.

Update-space attacks take the honest update an owner *would* send (flat vector) and return
what it sends instead; data-space attacks change the owner's training data before local
training. Sources: free-riders and the U(−1,1) "gradient" (Lin et al. 2019; RFFL, Xu & Lyu
2021), sign flipping and rescaling (RFFL's experiments), Gaussian updates (Fang et al.,
USENIX Security 2020), label flipping (Tolpegin et al. 2020), backdoor triggers (Bagdasaryan
et al., AISTATS 2020), Sybil groups (Fung et al., "FoolsGold", 2018) and "A Little Is
Enough" (Baruch et al., NeurIPS 2019).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

UPDATE_ATTACKS = ("free_rider", "sign_flip", "scaling", "gaussian", "sybil", "alie")
DATA_ATTACKS = ("label_flip", "backdoor")
ATTACK_KINDS = UPDATE_ATTACKS + DATA_ATTACKS


# -- free-riders ----------------------------------------------------------------------------------
def free_rider_random(dimension: int, rng: np.random.Generator, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """No training: a U(low, high) vector in place of an update (RFFL's free-rider)."""
    return rng.uniform(low, high, size=dimension).astype(np.float32)


def free_rider_zero(dimension: int) -> np.ndarray:
    """No training and nothing sent but zeros."""
    return np.zeros(dimension, dtype=np.float32)


def free_rider_stale(previous_global_delta: np.ndarray) -> np.ndarray:
    """No training: replays the last global model change as if it were its own update."""
    return np.asarray(previous_global_delta, dtype=np.float32).copy()


# -- update poisoning -------------------------------------------------------------------------------
def sign_flip(update: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """Send −factor·Δ: pushes the model against the honest direction."""
    return (-factor * np.asarray(update, dtype=np.float32)).astype(np.float32)


def scaling(update: np.ndarray, factor: float = 10.0) -> np.ndarray:
    """Send factor·Δ: an oversized update that dominates an unclipped mean."""
    return (factor * np.asarray(update, dtype=np.float32)).astype(np.float32)


def gaussian_noise(update: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Send Δ + N(0, σ²) per coordinate; with σ ≫ |Δ| this is Fang et al.'s Gaussian attack."""
    noise = rng.normal(0.0, sigma, size=np.shape(update))
    return (np.asarray(update, dtype=np.float64) + noise).astype(np.float32)


def sybil_group(base: np.ndarray, count: int, rng: np.random.Generator, jitter: float = 1e-3) -> np.ndarray:
    """`count` colluding identities sending near-identical copies of `base` (relative jitter)."""
    base = np.asarray(base, dtype=np.float64)
    scale = jitter * float(np.linalg.norm(base)) / np.sqrt(max(base.size, 1))
    return (base[None, :] + rng.normal(0.0, scale, size=(count, base.size))).astype(np.float32)


def alie_z(n_total: int, n_attackers: int) -> float:
    """Baruch et al.'s z_max: s = ⌊n/2 + 1⌋ − f, z = Φ⁻¹((n − s)/n)."""
    supporters = n_total // 2 + 1 - n_attackers
    quantile = (n_total - supporters) / n_total
    quantile = min(max(quantile, 1e-6), 1 - 1e-6)
    return float(NormalDist().inv_cdf(quantile))


def little_is_enough(honest_updates: np.ndarray, z: float) -> np.ndarray:
    """Every attacker sends mean − z·std of the honest updates (coordinate-wise)."""
    honest = np.asarray(honest_updates, dtype=np.float64)
    return (honest.mean(axis=0) - z * honest.std(axis=0)).astype(np.float32)


# -- data poisoning ---------------------------------------------------------------------------------
def label_flip(
    labels: np.ndarray, num_classes: int, source: int | None = None, target: int | None = None
) -> np.ndarray:
    """Relabel source→target (RFFL flips 1→7); without a pair, every y becomes C−1−y."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    if source is None or target is None:
        return (num_classes - 1 - labels).astype(np.int64)
    labels[labels == source] = target
    return labels


@dataclass(frozen=True)
class BackdoorTrigger:
    """Set `features` to `value` and relabel to `target`: the model learns trigger ⇒ target."""

    features: tuple[int, ...]
    value: float
    target: int


def add_backdoor(
    features: np.ndarray, labels: np.ndarray, trigger: BackdoorTrigger, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stamp the trigger on a `fraction` of the rows (copies) and relabel those rows."""
    x = np.asarray(features, dtype=np.float32).copy()
    y = np.asarray(labels, dtype=np.int64).copy()
    count = round(fraction * len(y))
    rows = rng.choice(len(y), size=count, replace=False)
    columns = np.asarray(trigger.features, dtype=np.int64)
    x[np.ix_(rows, columns)] = trigger.value
    y[rows] = trigger.target
    return x, y


def stamp_trigger(features: np.ndarray, trigger: BackdoorTrigger) -> np.ndarray:
    """The trigger applied to every row (to measure the attack success rate)."""
    x = np.asarray(features, dtype=np.float32).copy()
    x[:, np.asarray(trigger.features, dtype=np.int64)] = trigger.value
    return x
