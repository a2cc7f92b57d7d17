"""The scores an auditor checks without the sealed updates (client.audit): an owner already gone scores 0, an
active owner that sent nothing valid the task's missing score, and under capped scores a dropped update no more
than that; the integer rules (aggregator.fixedpoint.rffl_round) pass these checks whatever the missing score."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from aggregator import fixedpoint
from aggregator.fixedpoint import ONE
from client.audit import _score_problems

QUARTER = ONE // 4
SUB = [True, True, True, False, False]
KEPT = [True, True, False, False, False]
ACT = [True, True, True, True, False]  # owner 2 dropped, owner 3 silent, owner 4 gone


@pytest.mark.parametrize("missing", [0, -QUARTER, -ONE])
@pytest.mark.parametrize("capped", [False, True])
def test_the_integer_rules_pass_the_score_checks(missing: int, capped: bool) -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(-500, 500, size=(5, 8)).astype(np.int64)
    q[[3, 4]] = 0
    outcome = fixedpoint.rffl_round(q, submitted=SUB, kept=KEPT, active=ACT, base_weights=[ONE // 5] * 5,
                                    reputations=[ONE // 4] * 4 + [0], gamma_q=10**4, alpha_fp=ONE // 2,
                                    beta=Fraction(1, 3), capped=capped, missing_fp=missing)  # fmt: skip
    assert outcome.phis[3] == missing and outcome.phis[4] == 0
    assert _score_problems(outcome.phis, SUB, KEPT, ACT, missing, capped) == []


def test_scores_off_the_rules_are_named() -> None:
    phis = [ONE // 2, ONE // 3, -QUARTER, -QUARTER, 0]
    assert _score_problems(phis, SUB, KEPT, ACT, -QUARTER, True) == []
    silent_spared = [ONE // 2, ONE // 3, -QUARTER, 0, 0]
    assert _score_problems(silent_spared, SUB, KEPT, ACT, -QUARTER, True) == [
        f"an owner that sent nothing valid does not score the task's missing score ({-QUARTER})"
    ]
    dropped_scored = [ONE // 2, ONE // 3, ONE // 5, -QUARTER, 0]
    assert _score_problems(dropped_scored, SUB, KEPT, ACT, -QUARTER, True) == [
        f"a dropped update scores above the task's missing score ({-QUARTER})"
    ]
    assert _score_problems(dropped_scored, SUB, KEPT, ACT, -QUARTER, False) == []  # uncapped: its cosine stands
    gone_scored = [ONE // 2, ONE // 3, -QUARTER, -QUARTER, -QUARTER]
    assert _score_problems(gone_scored, SUB, KEPT, ACT, -QUARTER, True) == [
        "an owner already removed has a non-zero score"
    ]
