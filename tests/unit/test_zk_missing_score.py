"""Rule version rffl-v4: rffl-v3 with a proven missing score M. An active owner that sent nothing valid scores M, a
row the filters dropped min(φ, M), an owner already gone nothing; an aggregator that scores them as rffl-v3 does
(M = 0) has no proof under an rffl-v4 key, and the digest binds M."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from aggregator import fixedpoint
from aggregator.fixedpoint import ONE
from zk.groth16 import linked
from zk.groth16.keys import RULES_V4, setup_keys
from zk.groth16.linked import LinkedRule, filter_decision, prove_linked_round, statement_digest, verify_linked
from zk.groth16.prover import ProofRejected
from zk.groth16.rules import CircuitShape, RoundInputs, build_witness
from zk.groth16.sample import sample_round
from zk.pedersen import aggregate_commitment, commit, random_blinding

SHAPE = CircuitShape(5, 16)
QUARTER = ONE // 4
RULE = LinkedRule("rffl-v4", -ONE, fixedpoint.to_fixed(Fraction(9)), -QUARTER)  # k = 3, M = -1/4
OVERSIZED, HONEST, GONE, SILENT = 0, 1, 2, 3


def _round() -> RoundInputs:
    """sample_round with owner 2 removed in an earlier round and owner 3 silent (nothing valid this round)."""
    rnd = sample_round(SHAPE, first_round=False)
    q = np.asarray(rnd.q, dtype=np.int64).copy()
    q[[GONE, SILENT]] = 0
    reputations = list(rnd.reputations)
    reputations[GONE] = 0
    rnd = dataclasses.replace(rnd, q=q, submitted=[True, True, False, False, True],
                              active=[True, True, False, True, True], reputations=reputations)  # fmt: skip
    return dataclasses.replace(rnd, kept=filter_decision(rnd, RULE))


def _outcome(rnd: RoundInputs, missing_fp: int) -> fixedpoint.FixedRoundOutcome:
    return fixedpoint.rffl_round(
        np.asarray(rnd.q, dtype=np.int64), submitted=rnd.submitted, kept=rnd.kept, active=rnd.active,
        base_weights=rnd.base_weights, reputations=rnd.reputations, gamma_q=rnd.gamma_q, alpha_fp=rnd.alpha_fp,
        beta=rnd.beta, capped=True, missing_fp=missing_fp,
    )  # fmt: skip


def _model(rnd: RoundInputs, commitments: list, missing_fp: int):  # type: ignore[no-untyped-def,type-arg]
    weights = build_witness(SHAPE, rnd, capped=True, missing_fp=missing_fp).statement.weights
    return aggregate_commitment(commitments, weights)


@pytest.fixture(scope="module")
def proven():  # type: ignore[no-untyped-def]
    keys = setup_keys(SHAPE, spec=RULES_V4)  # cached on disk after the first run
    rnd = _round()
    commitments = [commit(row, random_blinding()) for row in rnd.q]
    model = _model(rnd, commitments, RULE.missing_fp)
    return keys, rnd, commitments, model, prove_linked_round(keys, rnd, commitments, model, RULE)


def test_gone_owners_score_nothing_whatever_the_missing_score() -> None:
    rnd = _round()
    assert _outcome(rnd, -QUARTER).phis[GONE] == 0 == _outcome(rnd, 0).phis[GONE]
    assert _outcome(rnd, -ONE).phis[SILENT] == -ONE


def test_silent_and_dropped_owners_score_the_missing_score_in_the_proof(proven) -> None:  # type: ignore[no-untyped-def]
    keys, rnd, _, _, result = proven
    assert [bool(k) for k in rnd.kept] == [False, True, False, False, True]  # owner 0 sends 4× the others
    outcome = result.witness.base.outcome
    rffl_v3 = _outcome(rnd, 0)
    assert rffl_v3.phis[OVERSIZED] == 0 and rffl_v3.phis[SILENT] == 0  # what rffl-v3 proves
    assert outcome.phis[OVERSIZED] == -QUARTER and outcome.phis[SILENT] == -QUARTER and outcome.phis[GONE] == 0
    assert outcome.phis[HONEST] == rffl_v3.phis[HONEST] > 0 and outcome.weights == rffl_v3.weights
    for owner in (OVERSIZED, SILENT):
        assert outcome.reputations[owner] < rffl_v3.reputations[owner]
    assert outcome.reputations[GONE] == 0
    ls = result.witness.linked
    assert verify_linked(keys, result.proof, ls.weights, ls.seed)
    assert result.proof.digest == statement_digest(ls.statement, RULE)
    other_m = dataclasses.replace(RULE, missing_fp=-QUARTER - 1)
    assert statement_digest(ls.statement, other_m) != result.proof.digest  # M is bound by the digest
    v3_rule = LinkedRule("rffl-v3", RULE.threshold, RULE.norm_ratio_sq)
    assert statement_digest(ls.statement, v3_rule) != result.proof.digest  # so is the rule version


def test_rffl_v3_scores_have_no_rffl_v4_proof(proven, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    keys, rnd, commitments, _, _ = proven
    real_build = linked.build_witness

    def as_rffl_v3(shape, r, capped=False, missing_fp=0):  # type: ignore[no-untyped-def]
        return real_build(shape, r, capped=capped)  # silent and dropped rows scored 0, not M

    monkeypatch.setattr(linked, "build_witness", as_rffl_v3)
    with pytest.raises(ProofRejected):
        prove_linked_round(keys, rnd, commitments, _model(rnd, commitments, 0), RULE)
    monkeypatch.undo()

    real_prove = linked.prove_inputs

    def other_missing_score(pk, directory, inputs, accept):  # type: ignore[no-untyped-def]
        return real_prove(pk, directory, inputs | {"missingNeg": QUARTER // 2}, accept)  # not the rule's M

    monkeypatch.setattr(linked, "prove_inputs", other_missing_score)
    with pytest.raises(ProofRejected):
        prove_linked_round(keys, rnd, commitments, _model(rnd, commitments, RULE.missing_fp), RULE)


def test_rule_checks_its_missing_score() -> None:
    with pytest.raises(ValueError, match="proves a missing score of 0"):
        LinkedRule("rffl-v3", 0, 0, -QUARTER)
    for bad in (1, -ONE - 1):
        with pytest.raises(ValueError, match="missing_fp"):
            LinkedRule("rffl-v4", 0, 0, bad)
    assert LinkedRule("rffl-v4", 0, 0, -ONE).digest_tail() == [0, 0, ONE]
    assert LinkedRule("rffl-v3", 0, 4 * ONE).digest_tail() == [0, 4 * ONE]
