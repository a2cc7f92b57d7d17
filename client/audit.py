"""The auditor: re-check every round of a task from the chain and IPFS, trusting nothing the aggregator says.

Per round (`audit_round` on the gathered `RoundEvidence`, so tests can tamper with any one piece):
- record: the round record named in the model file agrees with what the chain holds;
- aggregation: Σ W_i C_i == model commitment, recomputed with py_ecc (not mcl);
- model opening: the published weighted sum S and blinding open the model commitment, and the model file
  is exactly θ_prev + ⌊S/D⌋·2^-scale;
- rules: weights, reputations, removals recomputed in aggregator.fixedpoint from the published clip factors,
  cosines and flags; the scores that need no update (an owner gone: 0, an owner that sent nothing valid: the
  task's missing score, a dropped update under capped scores: no more than it); the Poseidon statement digest
  matches the proof's digest and the on-chain commitments;
- proof: the Groth16 pairing check with py_ecc against the task's published verifying key (rffl-v2 to v4: with the link
  seed re-derived from the on-chain Pedersen commitments, the model commitment and the proof's digest);
- link (rffl-v2 to v4): the record's Σ-proof that the Pedersen-committed updates evaluate to the proof's t at that seed,
  i.e. that the rules proof ran on exactly the updates whose weighted sum the chain checked (zk.auditor_link);
- contributions: Shapley recomputed from the published coalition utilities (v(∅) re-evaluated when the
  validation set is given); payouts: every RewardCredited equals pool·c_i/Σc.
What it cannot check: the clip factors and cosines themselves (they need the sealed updates: the Groth16
proof covers them, under rffl-v2 also the kept flags of the cosine filter, under rffl-v3 also those of the norm
filter and the capped scores of dropped rows, under rffl-v4 with the task's missing score) and coalition utilities
other than v(∅) (a dispute with the arbiter covers those).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from aggregator import fixedpoint
from aggregator.proving import linked_rule
from aggregator.record import MAX_RECORD_BYTES, RECORD_KEY, RoundRecord, apply_aggregate, contributions_from_shapley
from aggregator.shapley import BatchedModelEvaluator, CoalitionUtility, exact_shapley, gtg_shapley
from marketplace.chain.events import RewardCredited, RoundFinalized, Slashed, TaskCreated, UpdateSubmitted
from marketplace.chain.marketplace_contract import ZERO_POINT, MarketplaceContract, TaskTerms
from marketplace.data import Dataset
from marketplace.errors import ServiceUnavailableError
from marketplace.models import flatten
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from marketplace.updates import unpack_model
from zk.auditor import PY_ECC, Check, check_aggregation, open_model
from zk.auditor_groth16 import check_linked_rules_proof, check_rules_proof
from zk.auditor_link import check_link
from zk.auditor_verifier import check_onchain_verifier
from zk.groth16.linked import LINKED_PROOF_BYTES, LinkedRoundProof, LinkProof, link_seed, statement_digest
from zk.groth16.prover import ROUND_PROOF_BYTES, RoundProof
from zk.groth16.rules import commit_update


@dataclass
class RoundEvidence:
    """Everything public about one round, as fetched; the audit is a pure function of it."""

    round: int
    event: RoundFinalized
    record: RoundRecord | None
    model: dict[str, np.ndarray] | None
    previous_model: dict[str, np.ndarray]
    previous_model_cid: str
    previous_reputations: list[int] | None  # None before round 1
    commitments: list[tuple[int, int]]
    poseidons: list[int]
    proof: bytes
    credits: list[RewardCredited]
    slashed: int
    problem: str = ""  # why the record or model could not be read
    removed_before: int = 0  # removal bits posted in earlier rounds


@dataclass
class RoundAudit:
    round: int
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


@dataclass
class AuditReport:
    task_id: int
    rounds: list[RoundAudit] = field(default_factory=list)
    task_checks: list[Check] = field(default_factory=list)  # once per task (recorded rules, the verifier)

    @property
    def passed(self) -> bool:
        return bool(self.rounds) and all(r.passed for r in self.rounds) and all(c.passed for c in self.task_checks)

    def failures(self) -> list[str]:
        task = [f"task: {c}" for c in self.task_checks if not c.passed]
        return task + [f"round {r.round}: {c}" for r in self.rounds for c in r.checks if not c.passed]

    def lines(self) -> list[str]:
        task = [f"task: {c}" for c in self.task_checks]
        return task + [f"round {r.round}: {c}" for r in self.rounds for c in r.checks]


def _check(name: str, ok: bool, good: str, bad: str) -> Check:
    return Check(name, ok, good if ok else bad, 0.0, "Python integers")


def gather(contract: MarketplaceContract, files: TaskFiles, task_id: int, spec: TaskSpec) -> list[RoundEvidence]:
    """Fetch every finalized round's chain data, record and model files."""
    created = next(e for e in contract.events("TaskCreated", taskId=task_id) if isinstance(e, TaskCreated))
    participants = contract.get_participants(task_id)
    n = len(participants)
    events = contract.events("RoundFinalized", taskId=task_id)
    finalized = sorted((e for e in events if isinstance(e, RoundFinalized)), key=lambda e: e.round)
    credits = [e for e in contract.events("RewardCredited", taskId=task_id) if isinstance(e, RewardCredited)]
    slashes = [e for e in contract.events("Slashed", taskId=task_id) if isinstance(e, Slashed)]
    evidence: list[RoundEvidence] = []
    previous_cid, previous_reps, removed_before = created.initial_model_cid, None, 0
    previous_model = files.model(previous_cid, spec)
    for event in finalized:
        assert isinstance(event, RoundFinalized)
        submitted = contract.submissions(task_id, event.round)
        tx = contract.session.w3.eth.get_transaction(event.tx_hash)  # type: ignore[arg-type]
        _, arguments = contract.contract.decode_function_input(tx["input"])
        posted = arguments["report"]
        proof = bytes(posted["proof"] if isinstance(posted, dict) else posted[-1])
        record, model, problem = None, None, ""
        try:
            raw = files.get(event.model_cid, spec.max_model_bytes)
            model, metadata = unpack_model(raw, spec.shapes, spec.max_model_bytes)
            record = RoundRecord.from_json(files.get(metadata[RECORD_KEY], MAX_RECORD_BYTES))
        except ServiceUnavailableError:  # our own node failed: nothing is known about the files
            raise
        except Exception as exc:  # an unreadable model or record is a finding, not a crash
            problem = f"{type(exc).__name__}: {exc}"
        evidence.append(RoundEvidence(
            event.round, event, record, model, previous_model, previous_cid, previous_reps,
            [tuple(int(x) for x in submitted[i].commitment) if i in submitted else ZERO_POINT for i in range(n)],
            [int(submitted[i].poseidon) if i in submitted else 0 for i in range(n)],
            proof, [c for c in credits if c.round == event.round],
            sum(s.amount for s in slashes if s.round == event.round), problem, removed_before,
        ))  # fmt: skip
        removed_before |= event.removals
        previous_cid, previous_reps = event.model_cid, [int(r) for r in event.reputations]
        if model is not None:
            previous_model = model
    return evidence


def audit_round(
    ev: RoundEvidence,
    spec: TaskSpec,
    terms: TaskTerms,
    *,
    verifying_key: dict[str, Any] | None = None,
    validation: Dataset | None = None,
    method: str = "py_ecc",
) -> list[Check]:
    """Every check of one round (see the module docstring)."""
    rules = spec.rules
    if rules is None:
        return [_check("protocol", False, "", "the task has no protocol rules: nothing is committed to audit")]
    if ev.record is None or ev.model is None:
        return [_check("record", False, "", f"model file or round record unreadable: {ev.problem}")]
    rec, e = ev.record, ev.event
    checks = [_check(
        "record", rec.weights == list(e.weights) and rec.reputations_after == list(e.reputations)
        and rec.contributions == list(e.contributions) and rec.removals == e.removals
        and rec.previous_model_cid == ev.previous_model_cid and rec.round == ev.round,
        "the round record matches the weights, reputations, contributions and removals on chain",
        "the round record DISAGREES with the chain (weights, reputations, contributions, removals or model chain)",
    )]  # fmt: skip
    checks.append(check_aggregation(ev.commitments, list(e.weights), e.model_commitment))
    checks.append(open_model(np.asarray(rec.weighted_sum, dtype=object), rec.model_blinding, e.model_commitment,
                             tag=rules.generator_tag, method=method))  # fmt: skip
    aggregate = (np.asarray(rec.weighted_sum, dtype=np.int64) // rec.denominator if rec.denominator
                 else np.zeros(len(rec.weighted_sum), dtype=np.int64))  # fmt: skip
    expected = apply_aggregate(flatten(ev.previous_model, spec.model), aggregate, spec.scale_bits)
    checks.append(_check("model file", np.array_equal(flatten(ev.model, spec.model), expected),
                         "the model file is θ_prev + ⌊S/D⌋·2^-scale exactly",
                         "the model file on IPFS is NOT the committed aggregate applied to the previous model",
                         ))  # fmt: skip
    checks.append(_rules_check(ev, spec, aggregate, ev.round == terms.rounds))
    if rules.proof == "groth16":
        if verifying_key is None:
            checks.append(_check("rules proof (Groth16)", False, "", "no verifying key to check the proof with"))
        elif rules.linked:  # rffl-v2 to v4: the seed is re-derived from the on-chain commitments, as the adapter does
            checks.append(check_linked_rules_proof(verifying_key, ev.proof, list(e.weights), ev.commitments,
                                                   e.model_commitment, version=rules.rule_version))  # fmt: skip
        else:
            checks.append(check_rules_proof(verifying_key, ev.proof, list(e.weights)))
        if rules.linked:
            checks.append(_link_check(ev, spec))
    checks.append(_contributions_check(ev, spec, validation))
    checks.append(_payout_check(ev, terms))
    return checks


def _score_problems(phis: list[int], sub: list[bool], kept: list[bool], act: list[bool], missing_fp: int,
                    capped: bool) -> list[str]:  # fmt: skip
    """The scores an auditor can check without the sealed updates: an owner already gone scores 0, an active owner
    that sent nothing valid the task's missing score, and (capped) a dropped update no more than it."""
    problems = []
    if any(p != 0 for p, a in zip(phis, act, strict=True) if not a):
        problems.append("an owner already removed has a non-zero score")
    if any(p != missing_fp for p, a, s in zip(phis, act, sub, strict=True) if a and not s):
        problems.append(f"an owner that sent nothing valid does not score the task's missing score ({missing_fp})")
    if capped and any(p > missing_fp for p, a, s, k in zip(phis, act, sub, kept, strict=True) if a and s and not k):
        problems.append(f"a dropped update scores above the task's missing score ({missing_fp})")
    return problems


def _rules_check(ev: RoundEvidence, spec: TaskSpec, aggregate: np.ndarray, last_round: bool) -> Check:
    """Re-run the integer rules from the published inputs; bind them to the proof digest and the chain."""
    rules, rec = spec.rules, ev.record
    assert rules is not None and rec is not None
    n, one = len(rec.weights), fixedpoint.ONE
    problems: list[str] = []
    sub = [bool(f & 1) for f in rec.flags]
    kept = [bool(f & 2) for f in rec.flags]
    act = [bool(f & 4) for f in rec.flags]
    gone = [bool(f & 8) for f in rec.flags]
    before = ev.previous_reputations or [one // n] * n
    if rec.reputations_before != before:
        problems.append("reputations before the round are not the previous round's")
    if ev.previous_reputations is not None and rec.base_weights != before:
        problems.append("base weights are not the reputations")
    if (rec.gamma_q, rec.alpha_fp, Fraction(rec.beta)) != (
        round(rules.gamma * (1 << spec.scale_bits)),
        fixedpoint.to_fixed(Fraction(rules.alpha)),
        rules.beta_in_round(rec.round),
    ):
        problems.append("Γ, α or β differ from the task spec (β is 0 past its removal_rounds)")
    problems += _score_problems(rec.phis, sub, kept, act, rules.missing_score_fp, rules.capped)
    weights = [(b * c) // one if (k and a and s) else 0
               for b, c, k, a, s in zip(rec.base_weights, rec.clip_factors, kept, act, sub, strict=True)]  # fmt: skip
    if weights != rec.weights:
        problems.append("weights do not follow W_i = ⌊base_i·clip_i/ONE⌋")
    alpha = rec.alpha_fp
    stepped = fixedpoint.normalise(
        [fixedpoint.reputation_step(r, p, alpha) if a else 0 for r, p, a in zip(before, rec.phis, act, strict=True)]
    )
    count = sum(act)
    beta = Fraction(rec.beta)
    removed = [a and fixedpoint.below_removal_threshold(r, count, beta) for r, a in zip(stepped, act, strict=True)]
    after = fixedpoint.normalise([0 if g else r for r, g in zip(stepped, removed, strict=True)])
    if after != rec.reputations_after or removed != gone:
        problems.append("reputations or removals do not follow the RFFL update from the published cosines")
    denominator = sum(b for b, k, a, s in zip(rec.base_weights, kept, act, sub, strict=True) if k and a and s)
    if denominator != rec.denominator:
        problems.append("the aggregate's denominator is not Σ base over kept rows")
    due = fixedpoint.removal_bits(ev.removed_before, act, gone, rec.weights, last_round)
    if due != ev.event.removals:
        problems.append(f"removal bits {ev.event.removals:#x} posted, the rules call for {due:#x}")
    for i in range(n):
        if sub[i] and rec.poseidons[i] != ev.poseidons[i]:
            problems.append(f"owner {i}'s Poseidon commitment in the statement is not the one on chain")
    if rec.model_poseidon != commit_update(aggregate, rec.model_salt, rec.value_bits):
        problems.append("the model's Poseidon commitment does not match the aggregate")
    if rules.proof == "groth16":
        statement = rec.statement(reputations_before=before)
        if rules.linked:
            rule = linked_rule(rules)
            if (rec.rule_version, rec.filter_threshold, rec.norm_ratio_sq) != (rule.version, rule.threshold,
                                                                               rule.norm_ratio_sq):  # fmt: skip
                problems.append("the record's rule version or filter parameters (τ, norm ratio) differ from the "
                                "task spec")  # fmt: skip
            if len(ev.proof) != LINKED_PROOF_BYTES:
                problems.append(f"the proof is {len(ev.proof)} bytes, not an {rule.version} proof "
                                f"({LINKED_PROOF_BYTES})")  # fmt: skip
            elif statement_digest(statement, rule) != LinkedRoundProof.from_bytes(ev.proof).digest:
                problems.append(f"the proof's digest is not the {rule.version} digest of the published statement")
        elif len(ev.proof) == ROUND_PROOF_BYTES and statement.digest != RoundProof.from_bytes(ev.proof).digest:
            problems.append("the proof's digest is not the digest of the published statement")
    elif rules.fixed_filters and (rec.filter_threshold, rec.norm_ratio_sq) != (rules.filter_threshold_fp,
                                                                              rules.norm_ratio_sq_fp):  # fmt: skip
        problems.append("the record's filter parameters (τ, norm ratio) differ from the task spec")
    return _check("rules", not problems, "weights, reputations and removals follow the published rules",
                  "; ".join(problems))  # fmt: skip


def _link_check(ev: RoundEvidence, spec: TaskSpec) -> Check:
    """rffl-v2 to v4: the record's Σ-proof shows that the Pedersen-committed updates (on chain) evaluate, at the seed
    the adapter derived from them, to the t the Groth16 proof carries: the rules ran on exactly those updates."""
    rules, rec = spec.rules, ev.record
    assert rules is not None and rec is not None
    name = "poseidon-pedersen link"
    if len(ev.proof) != LINKED_PROOF_BYTES:
        return _check(name, False, "", f"the posted proof is {len(ev.proof)} bytes: no linked digest and t to link")
    posted = LinkedRoundProof.from_bytes(ev.proof)
    digest, t = posted.digest, posted.t
    seed = link_seed(ev.commitments, ev.event.model_commitment, digest)
    try:
        proof = LinkProof.from_json(rec.link["proof"])
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return _check(name, False, "", f"the round record carries no readable link proof ({type(exc).__name__})")
    published = (rec.link.get("seed"), rec.link.get("t"))
    if published != (str(seed), str(t)):
        return _check(name, False, "", "the record's link seed or t is not the one the chain derived for the proof")
    if len(proof.sigma) != len(rec.weighted_sum):
        return _check(name, False, "", f"the link proof has {len(proof.sigma)} coordinates, the model "
                                       f"{len(rec.weighted_sum)}")  # fmt: skip
    submitted = [bool(f & 1) for f in rec.flags]  # in the digest the Groth16 proof verified
    return check_link(ev.commitments, submitted, seed, t, proof, tag=rules.generator_tag)


def _contributions_check(ev: RoundEvidence, spec: TaskSpec, validation: Dataset | None) -> Check:
    rec = ev.record
    assert rec is not None
    problems: list[str] = []
    players = [i for i, w in enumerate(rec.weights) if w > 0 and not rec.flags[i] & 8]
    if players != rec.shapley_players:
        problems.append("Shapley players are not the owners with a weight who stayed")
    memo = {int(k): float(v) for k, v in rec.shapley_utilities.items()}
    if players:
        utility = CoalitionUtility(np.zeros(1), np.zeros((len(players), 1)), _no_evaluation)
        utility.memo = dict(memo)
        try:
            if rec.shapley_method == "exact":
                values = exact_shapley(utility).values
            else:
                options = {k: v for k, v in (spec.rules.shapley if spec.rules else {}).items()
                           if k not in ("metric", "method", "exact_max_players")}  # fmt: skip
                values = gtg_shapley(utility, rec.shapley_seed, **options).values
            if [float(v) for v in values] != rec.shapley_values:
                problems.append("Shapley values do not follow from the published utilities")
        except KeyError:
            problems.append("the published utilities miss a coalition the computation needs")
        if validation is not None and 0 in memo:
            metric = str((spec.rules.shapley if spec.rules else {}).get("metric", "accuracy"))
            evaluate = BatchedModelEvaluator(spec.model, validation.X, validation.y, metric)
            theta = flatten(ev.previous_model, spec.model).astype(np.float32)
            if abs(float(evaluate(theta[None, :])[0]) - memo[0]) > 1e-9:
                problems.append("v(∅) is not the previous model's metric on the validation set")
    expected = contributions_from_shapley(len(rec.weights), players, rec.shapley_values, rec.reputations_after)
    if expected != list(ev.event.contributions):
        problems.append("posted contributions are not the scaled Shapley values")
    detail = "contributions follow from the published Shapley utilities"
    if validation is not None:
        detail += " (v(∅) re-evaluated on the validation set)"
    return _check("contributions", not problems, detail, "; ".join(problems))


def _no_evaluation(params: np.ndarray) -> np.ndarray:
    raise KeyError("coalition utility not published")


def _payout_check(ev: RoundEvidence, terms: TaskTerms) -> Check:
    contributions = list(ev.event.contributions)
    removals = ev.event.removals
    pool = terms.reward // terms.rounds + ev.slashed
    weights = [c if c > 0 and not removals >> i & 1 else 0 for i, c in enumerate(contributions)]
    total = sum(weights)
    expected = sorted(pool * w // total for w in weights if total and pool * w // total)
    paid = sorted(c.amount for c in ev.credits)
    if not ev.credits and total:
        return _check("payouts", True, "round not settled yet", "")
    counted = "1 credit equals" if len(paid) == 1 else f"{len(paid)} credits equal"
    return _check("payouts", paid == expected, f"{counted} pool·c_i/Σc (pool {pool} base units)",
                  f"credits {paid} differ from pool·c_i/Σc = {expected}")  # fmt: skip


def check_recorded_rules(terms: TaskTerms, spec: TaskSpec) -> Check:
    """The chain's Rules name the Γ, α and β the spec runs: the dashboard and anyone reading the terms see those."""
    assert spec.rules is not None
    wanted = spec.rules.chain_record(spec.scale_bits)
    recorded = {name: getattr(terms.rules, name) for name in wanted}
    passed = recorded == wanted
    detail = f"chain records {recorded}" + ("" if passed else f", the spec runs {wanted}")
    return Check("rules recorded on chain", passed, detail, 0.0, "Python integers")


def audit_task(
    contract: MarketplaceContract,
    files: TaskFiles,
    task_id: int,
    validation: Dataset | None = None,
    *,
    method: str = "py_ecc",
    rounds: Collection[int] | None = None,
) -> AuditReport:
    """Audit every finalized round of a task, or only `rounds`; `validation` (the owner's set, if public) adds v(∅)
    checks. Earlier rounds are still read (a round is judged against the model and reputations before it), but
    only the chosen ones are checked: the proofs and the Shapley recomputation are the slow part."""
    info = contract.get_task(task_id)
    spec = files.spec(info.spec_cid)
    vk = None
    if spec.rules is not None and spec.rules.verifying_key_cid:
        vk = json.loads(files.get(spec.rules.verifying_key_cid, 1 << 20))
    if validation is None:
        try:
            validation = files.validation_set(spec)
        except ServiceUnavailableError:
            raise
        except Exception:
            validation = None
    report = AuditReport(task_id)
    if spec.rules is not None:
        report.task_checks.append(check_recorded_rules(info.terms, spec))
    if vk is not None and spec.rules is not None and spec.rules.proof == "groth16":
        check = check_onchain_verifier(contract.session.w3, info.terms.verifier, vk, spec.rules.rule_version)
        report.task_checks.append(check)
    for ev in gather(contract, files, task_id, spec):
        if rounds is not None and ev.round not in rounds:
            continue
        checks = audit_round(ev, spec, info.terms, verifying_key=vk, validation=validation, method=method)
        report.rounds.append(RoundAudit(ev.round, checks))
    return report


__all__ = ["PY_ECC", "AuditReport", "RoundAudit", "RoundEvidence", "UpdateSubmitted", "audit_round", "audit_task",
           "gather"]  # fmt: skip
