"""Fixed-point protocol arithmetic: exact integer identities and agreement with the float path."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator import fixedpoint
from aggregator.fixedpoint import ONE
from aggregator.reputation import RFFLConfig, RFFLReputation
from aggregator.rules import NormClip, RoundContext, UpdateBatch


@given(st.integers(1, 10**30), st.integers(1, 10**12))
@settings(max_examples=200, deadline=None)
def test_clip_factor_is_exact_floor(squared_norm: int, gamma_q: int) -> None:
    factor = fixedpoint.clip_factor(squared_norm, gamma_q)
    if squared_norm <= gamma_q**2:
        assert factor == ONE
    else:  # factor = ⌊ONE·Γ/√N⌋  ⇔  factor² ≤ ONE²Γ²/N < (factor+1)²
        assert factor**2 * squared_norm <= ONE**2 * gamma_q**2 < (factor + 1) ** 2 * squared_norm


@given(
    st.lists(st.integers(-(2**20), 2**20), min_size=3, max_size=3),
    st.lists(st.integers(-(2**20), 2**20), min_size=3, max_size=3),
)
@settings(max_examples=200, deadline=None)
def test_integer_cosine_is_truncated_exact_cosine(a: list[int], b: list[int]) -> None:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na, nb = sum(x * x for x in a), sum(y * y for y in b)
    value = fixedpoint.cosine(dot, na, nb)
    if na == 0 or nb == 0 or dot == 0:
        assert value == 0
        return
    exact = Fraction(ONE * dot) ** 2 / (na * nb)  # (ONE·cos)², sign from dot
    assert abs(value) <= ONE
    assert value**2 <= exact < (abs(value) + 1) ** 2
    assert (value > 0) == (dot > 0)


def test_exact_products_survive_int64_overflow() -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(-(2**40), 2**40, size=(3, 5000), dtype=np.int64)
    norms = fixedpoint.exact_squared_norms(big)
    dots = fixedpoint.exact_dots(big, big[0])
    for i in range(3):
        assert norms[i] == sum(int(x) * int(x) for x in big[i])
        assert dots[i] == sum(int(x) * int(y) for x, y in zip(big[i], big[0], strict=True))
    mean = fixedpoint.weighted_mean(big, [ONE, ONE // 2, 3])
    assert mean[7] == (ONE * int(big[0, 7]) + ONE // 2 * int(big[1, 7]) + 3 * int(big[2, 7])) // (ONE + ONE // 2 + 3)


def test_removal_threshold_is_exact_rational() -> None:
    # β/|R| = 1/30 at |R| = 10: r = ⌈ONE/30⌉ stays, one less goes
    boundary = math.ceil(ONE / 30)
    assert not fixedpoint.below_removal_threshold(boundary, 10, Fraction(1, 3))
    assert fixedpoint.below_removal_threshold(boundary - 1, 10, Fraction(1, 3))


def test_removal_bits_wait_for_weight_zero_except_in_the_last_round() -> None:
    # owner 0 removed before; 1 inactive (weight 0); 2 falls below β/|R| while weighted; 3 falls below unweighted
    active, gone, weights = [False, False, True, True], [False, False, True, True], [0, 0, 5, 0]
    assert fixedpoint.removal_bits(0b0001, active, gone, weights, last_round=False) == 0b1010
    assert fixedpoint.removal_bits(0b0001, active, gone, weights, last_round=True) == 0b1110
    assert fixedpoint.removal_bits(0, [True] * 4, [False] * 4, [1, 0, 1, 0], last_round=True) == 0


def _quantized_rounds(rounds: int, seed: int = 0, n: int = 6, d: int = 300, scale_bits: int = 16):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    for _ in range(rounds):
        floats = direction * 0.05 + 0.05 * rng.normal(size=(n, d))
        floats[0] = -floats[0] * 3  # a sign-flipping, scaled sender
        yield np.rint(floats * 2**scale_bits).astype(np.int64)


@pytest.mark.parametrize("removal_rounds", [None, 0, 2])
def test_fixed_and_float_rffl_agree_over_rounds(removal_rounds: int | None) -> None:
    # past a removal window (β = 0) both leave an owner only once its reputation is 0, one round later
    scale_bits, gamma = 16, 0.5
    senders = [f"s{i}" for i in range(6)]
    sizes = [100, 80, 120, 60, 90, 110]
    fixed = RFFLReputation(RFFLConfig(removal_rounds=removal_rounds), arithmetic="fixed")
    floating = RFFLReputation(RFFLConfig(removal_rounds=removal_rounds))
    gamma_q = round(gamma * 2**scale_bits)
    for q in _quantized_rounds(8):
        active = [fixed.is_active(s) or not fixed.state.participants for s in senders]
        rows = [i for i, a in enumerate(active) if a]
        out_fixed = fixed.step_fixed(
            q[rows], [senders[i] for i in rows], [True] * len(rows), [sizes[i] for i in rows], gamma_q
        )
        floats = (q[rows] / 2**scale_bits).astype(np.float64)
        batch = UpdateBatch.from_updates(floats)
        batch = batch.derive(scale=NormClip(gamma).apply(batch, RoundContext(tuple(senders))).scale)
        out_float = floating.step(batch, [senders[i] for i in rows], [sizes[i] for i in rows])
        for s in senders:
            assert abs(out_fixed.phis[s] - out_float.phis[s]) < 1e-4
            assert abs(out_fixed.reputations[s] - out_float.reputations[s]) < 1e-4
        assert out_fixed.removed_now == out_float.removed_now
        aggregate_fixed = out_fixed.aggregate / 2**scale_bits
        np.testing.assert_allclose(aggregate_fixed, out_float.aggregate, atol=2 / 2**scale_bits)
    assert "s0" in fixed.removed and fixed.removed == floating.removed
    # the flipper falls below β/|R| in round 3; past a window it leaves once its reputation is 0 (round 5)
    assert fixed.removed["s0"] == {None: 3, 0: 6, 2: 6}[removal_rounds]


def test_cosine_filter_fixed_keeps_agreeing_rows() -> None:
    q = next(_quantized_rounds(1))
    gamma_q = round(0.5 * 2**16)
    clip_weights = [fixedpoint.clip_factor(s, gamma_q) for s in fixedpoint.exact_squared_norms(q)]
    kept = fixedpoint.cosine_filter(q, clip_weights, 0)
    assert kept == [False, True, True, True, True, True]


def test_reports_post_reputations_at_the_scale_readers_divide_by() -> None:
    from marketplace.chain.marketplace_contract import REPUTATION_ONE

    assert ONE == REPUTATION_ONE  # the CLI, the service and the dashboard read reputations / REPUTATION_ONE
