"""A deterministic sample round (tests, benchmarks, demos): n owners, one free-rider and one heavy update."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from aggregator.fixedpoint import ONE, data_size_shares, to_fixed
from zk.groth16.rules import CircuitShape, RoundInputs


def sample_round(shape: CircuitShape, seed: int = 0, *, first_round: bool = True) -> RoundInputs:
    """Honest owners share a direction; owner n−1 sends noise (free-rider); owner 0 a 4× larger update (clipped)."""
    rng = np.random.default_rng(seed)
    limit = (1 << shape.value_bits) - 1
    scale = limit // 8
    direction = rng.normal(0, 1, shape.d)
    rows = [direction + rng.normal(0, 0.5, shape.d) for _ in range(shape.n)]
    rows[0] = 4 * rows[0]
    if shape.n > 1:
        rows[-1] = rng.uniform(-1, 1, shape.d) * 2
    q = np.clip(np.rint(np.array(rows) / 4 * scale), -limit, limit).astype(np.int64)
    sizes = [600 + 50 * i for i in range(shape.n)]
    base = data_size_shares(sizes) if first_round else [ONE // shape.n] * shape.n
    gamma = int(np.sqrt(shape.d) * scale * 0.4) + 1
    return RoundInputs(
        q=q,
        submitted=[True] * shape.n,
        kept=[True] * shape.n,
        active=[True] * shape.n,
        base_weights=base,
        reputations=base,
        gamma_q=gamma,
        alpha_fp=to_fixed(Fraction(95, 100)),
        beta=Fraction(1, 3),
        salts=[int(x) for x in rng.integers(1, 2**62, shape.n)],
        model_salt=int(rng.integers(1, 2**62)),
    )
