"""Rule version rffl-v3: the proven norm-ratio filter and capped scores. An oversized update is dropped and
scores no better than a sender of nothing; an aggregator that keeps it, picks another median or scores it by
its cosine has no proof, and the digest binds the filter's k."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from aggregator import fixedpoint
from aggregator.fixedpoint import ONE
from zk.groth16 import linked
from zk.groth16.keys import RULES_V3, setup_keys
from zk.groth16.linked import LinkedRule, filter_decision, prove_linked_round, statement_digest, verify_linked
from zk.groth16.prover import ProofRejected
from zk.groth16.rules import CircuitShape, RuleMismatch, build_witness
from zk.groth16.sample import sample_round
from zk.pedersen import aggregate_commitment, commit, random_blinding

SHAPE = CircuitShape(5, 16)
RULE = LinkedRule("rffl-v3", -ONE, fixedpoint.to_fixed(Fraction(9)))  # k = 3, no cosine filter


def test_lower_median_is_an_element() -> None:
    assert fixedpoint.lower_median([]) == 0
    assert fixedpoint.lower_median([7]) == 7
    assert fixedpoint.lower_median([9, 1, 5, 3]) == 3  # the 2nd smallest of 4, no average
    assert fixedpoint.lower_median([4, 4, 1, 9, 4]) == 4


def test_norm_ratio_filter_drops_rows_over_k_times_the_median() -> None:
    squared = [100, 400, 900, 3600, 0]  # norms 10, 20, 30, 60, 0; live median of the first four: 400 (norm 20)
    live = [True, True, True, True, False]
    k_sq = fixedpoint.to_fixed(Fraction(9))  # k = 3: bound 60
    assert fixedpoint.norm_ratio_filter(squared, live, k_sq) == [True, True, True, True, False]
    k_sq = fixedpoint.to_fixed(Fraction(289, 100))  # k = 1.7: bound 34
    assert fixedpoint.norm_ratio_filter(squared, live, k_sq) == [True, True, True, False, False]
    assert fixedpoint.norm_ratio_filter(squared, live, 0) == live  # K = 0: off


def test_capped_scores_only_change_dropped_rows() -> None:
    rnd = sample_round(SHAPE)
    q = np.asarray(rnd.q, dtype=np.int64)
    q[1] = -q[2]  # a row pointing against the others keeps its negative score either way
    kept = [False, False, True, True, True]
    common = {"submitted": rnd.submitted, "kept": kept, "active": rnd.active, "base_weights": rnd.base_weights,
              "reputations": rnd.reputations, "gamma_q": rnd.gamma_q, "alpha_fp": rnd.alpha_fp, "beta": rnd.beta}
    plain = fixedpoint.rffl_round(q, **common)  # type: ignore[arg-type]
    capped = fixedpoint.rffl_round(q, **common, capped=True)  # type: ignore[arg-type]
    assert plain.phis[0] > 0 and capped.phis[0] == 0  # dropped, pointing with the aggregate: scored as nothing
    assert plain.phis[1] < 0 and capped.phis[1] == plain.phis[1]
    assert capped.phis[2:] == plain.phis[2:] and capped.weights == plain.weights
    assert capped.reputations[0] < plain.reputations[0]
    quarter = ONE // 4  # a task's missing_score of -1/4: a dropped row scores min(φ, -1/4), a missing one -1/4
    submitted = [False, *rnd.submitted[1:]]
    penalised = fixedpoint.rffl_round(q, **{**common, "submitted": submitted}, capped=True, missing_fp=-quarter)
    assert penalised.phis[0] == -quarter and penalised.phis[1] == min(plain.phis[1], -quarter)
    assert penalised.phis[2:] == plain.phis[2:]
    with pytest.raises(ValueError, match="missing_fp"):
        fixedpoint.rffl_round(q, **common, missing_fp=1)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def proven():  # type: ignore[no-untyped-def]
    keys = setup_keys(SHAPE, spec=RULES_V3)  # cached on disk after the first run
    rnd = sample_round(SHAPE)
    rnd = dataclasses.replace(rnd, kept=filter_decision(rnd, RULE))
    commitments = [commit(row, random_blinding()) for row in rnd.q]
    model = aggregate_commitment(commitments, build_witness(SHAPE, rnd, capped=True).statement.weights)
    return keys, rnd, commitments, model, prove_linked_round(keys, rnd, commitments, model, RULE)


def test_oversized_update_is_dropped_and_capped_in_the_proof(proven) -> None:  # type: ignore[no-untyped-def]
    keys, rnd, _, _, result = proven
    squared = fixedpoint.exact_squared_norms(np.asarray(rnd.q, dtype=np.int64))
    assert squared[0] * ONE > RULE.norm_ratio_sq * fixedpoint.lower_median(squared)  # owner 0 sends 4× the others
    assert [bool(k) for k in rnd.kept] == [False, True, True, True, True]
    outcome = result.witness.base.outcome
    assert outcome.weights[0] == 0 and outcome.phis[0] == 0
    uncapped = fixedpoint.rffl_round(
        np.asarray(rnd.q, dtype=np.int64), submitted=rnd.submitted, kept=rnd.kept, active=rnd.active,
        base_weights=rnd.base_weights, reputations=rnd.reputations, gamma_q=rnd.gamma_q, alpha_fp=rnd.alpha_fp,
        beta=rnd.beta,
    )  # fmt: skip
    assert uncapped.phis[0] > 0  # its cosine alone would have scored it like an honest owner
    ls = result.witness.linked
    assert verify_linked(keys, result.proof, ls.weights, ls.seed)
    assert result.proof.digest == statement_digest(ls.statement, RULE)
    other_k = dataclasses.replace(RULE, norm_ratio_sq=RULE.norm_ratio_sq + 1)
    assert statement_digest(ls.statement, other_k) != result.proof.digest  # k is bound by the digest
    v2_rule = LinkedRule("rffl-v2", RULE.threshold)
    assert statement_digest(ls.statement, v2_rule) != result.proof.digest  # so is the rule version


def test_dishonest_rounds_have_no_proof(proven, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    keys, rnd, commitments, _, _ = proven
    everyone = dataclasses.replace(rnd, kept=[True] * SHAPE.n)
    full_model = aggregate_commitment(commitments, build_witness(SHAPE, everyone, capped=True).statement.weights)
    with pytest.raises(RuleMismatch):  # the honest prover refuses to keep the oversized row
        prove_linked_round(keys, everyone, commitments, full_model, RULE)
    monkeypatch.setattr(linked, "filter_decision", lambda r, rule: [bool(k) for k in r.kept])
    with pytest.raises(ProofRejected):  # and the circuit rejects it
        prove_linked_round(keys, everyone, commitments, full_model, RULE)
    monkeypatch.undo()

    real_build = linked.build_witness
    monkeypatch.setattr(linked, "build_witness", lambda shape, r, capped=False, missing_fp=0: real_build(shape, r))
    model = aggregate_commitment(commitments, build_witness(SHAPE, rnd).statement.weights)
    with pytest.raises(ProofRejected):  # the dropped row scored by its cosine, not capped
        prove_linked_round(keys, rnd, commitments, model, RULE)
    monkeypatch.undo()

    real_hints = linked._median_hints

    def wrong_median(r, rule):  # type: ignore[no-untyped-def]
        hints = real_hints(r, rule)
        hints["medSel"] = [int(i == 0) for i in range(SHAPE.n)]  # the oversized row as the "median"
        return hints

    monkeypatch.setattr(linked, "_median_hints", wrong_median)
    model = aggregate_commitment(commitments, build_witness(SHAPE, rnd, capped=True).statement.weights)
    with pytest.raises(ProofRejected):
        prove_linked_round(keys, rnd, commitments, model, RULE)


def test_rule_checks_its_parameters() -> None:
    with pytest.raises(ValueError, match="no norm-ratio filter"):
        LinkedRule("rffl-v2", 0, ONE)
    with pytest.raises(ValueError, match="unknown linked rule"):
        LinkedRule("rffl-v9")
    with pytest.raises(ValueError, match="norm_ratio_sq"):
        LinkedRule("rffl-v3", 0, 1 << linked.NORM_RATIO_BITS)
