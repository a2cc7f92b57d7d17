"""One protocol round: checked commitments → robust filters → fixed-point RFFL → Shapley → commitments,
proof → finalize. Stages are separate functions so the daemon can persist progress between them.

Reputation state is read back from the chain (the last RoundFinalized event's reputations and the
task's removal mask), so an aggregator that restarts, or another one, resumes with exactly the same
numbers. Removals: RFFL removes an owner after scoring the round it still weighed in, but the
contract refuses a removal bit on a non-zero weight, so the bit (and the slash) is posted in the first
report where that owner's weight is 0 — the same round if it was filtered out, else the next one.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from aggregator import fixedpoint
from aggregator.pipeline import AggregationPipeline, PipelineSpecError, build_pipeline
from aggregator.proving import (
    LinkedRound,
    circuit_shape,
    link_round,
    linked_rule,
    pedersen_commitment,
    poseidon_commitment,
    prove_linked_rules,
    prove_rules,
)
from aggregator.record import (
    RECORD_KEY,
    RoundRecord,
    apply_aggregate,
    chain_seed,
    contributions_from_shapley,
    model_salt,
)
from aggregator.round import AcceptedUpdate, Rejection, RoundAggregator, RoundResult
from aggregator.rules import FeatureOutlierFilter, RoundContext, UpdateBatch
from aggregator.rules.base import ValidationLoss
from aggregator.shapley import EXACT_MAX_PLAYERS, BatchedModelEvaluator, CoalitionUtility, exact_shapley, gtg_shapley
from marketplace.chain.events import RoundFinalized, UpdateSubmitted
from marketplace.chain.marketplace_contract import ZERO_POINT, MarketplaceContract, RoundReport, RoundStatus
from marketplace.errors import ContractRevert, FedmarketError
from marketplace.models import ModelSpec, expected_shapes, flatten, unflatten
from marketplace.task_spec import ProtocolSpec, TaskSpec
from zk.groth16.linked import statement_digest
from zk.groth16.rules import RoundInputs
from zk.pedersen import aggregate_blinding, aggregate_commitment, commit


class RoundAlreadyPosted(FedmarketError):
    """The chain already holds this round's report: nothing to do (never post twice)."""


@dataclass
class Collected:
    participants: list[str]
    submissions: dict[int, UpdateSubmitted]
    accepted: dict[int, AcceptedUpdate]
    rejected: list[Rejection]


@dataclass
class Planned:
    report: RoundReport
    record: RoundRecord
    inputs: RoundInputs
    model: dict[str, np.ndarray]
    collected: Collected
    record_cid: str
    timings: dict[str, float] = field(default_factory=dict)


def prior_reputations(contract: MarketplaceContract, task_id: int, round_: int, n: int) -> tuple[int, list[int]]:
    """(rounds finalized before `round_`, reputations after the last of them); uniform before round 1."""
    finalized = [e for e in contract.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    earlier = [e for e in finalized if e.round < round_]
    if not earlier:
        return 0, [fixedpoint.ONE // n] * n
    last = max(earlier, key=lambda e: e.round)
    return len({e.round for e in earlier}), [int(r) for r in last.reputations]


def collect(agg: RoundAggregator, task_id: int, round_: int) -> Collected:
    """Open every submission and check it against BOTH its on-chain commitments; a mismatch rejects it."""
    _, spec = agg.task(task_id)
    rules = _rules(spec)
    participants = agg.contract.get_participants(task_id)
    submissions = agg.contract.submissions(task_id, round_)
    accepted, rejected = agg.collect(task_id, round_)
    by_owner = {u.data_owner.lower(): u for u in accepted}
    kept: dict[int, AcceptedUpdate] = {}
    for index, event in sorted(submissions.items()):
        update = by_owner.get(event.data_owner.lower())
        if update is None:
            continue
        reason = _commitment_problem(update, event, rules)
        if reason:
            rejected.append(Rejection(event.data_owner, event.update_cid, reason))
        else:
            kept[index] = update
    return Collected(participants, submissions, kept, rejected)


def _commitment_problem(update: AcceptedUpdate, event: UpdateSubmitted, rules: ProtocolSpec) -> str:
    q, header = update.q, update.header
    assert q is not None
    if header.blinding is None or header.salt is None:
        return "update carries no commitment openings (blinding and salt)"
    if q.size and int(np.abs(q).max()) > rules.bound:
        return f"a value exceeds the task's range ±{rules.bound} (value_bits {rules.value_bits})"
    if pedersen_commitment(q, header.blinding, rules) != tuple(int(x) for x in event.commitment):
        return "Pedersen commitment on chain does not open to the update's content"
    if poseidon_commitment(q, header.salt, rules) != int(event.poseidon):
        return "Poseidon commitment on chain does not match the update's content"
    return ""


def _rules(spec: TaskSpec) -> ProtocolSpec:
    rules = spec.rules
    if rules is None:
        raise FedmarketError("this task has no protocol rules (legacy FedAvg task)")
    return rules


def filter_pipeline(rules: ProtocolSpec, model: ModelSpec | None = None) -> AggregationPipeline | None:
    """The task's robust filters (rffl-v1, Pedersen, unverified; clip is RFFL's own) as a checked pipeline, or
    None without any. Publishing checks them too, so a bad entry is refused before anything is spent rather
    than when the first round is aggregated; given the task's model, a filter that reads its first layer must
    name that layer's shape."""
    filters = [f for f in rules.filters if f.get("name") != "clip"]
    if not filters:
        return None
    try:
        pipeline = build_pipeline({"rules": filters, "reputation": "none"})
    except PipelineSpecError as error:
        raise FedmarketError(
            f"protocol filters: {error}",
            hint='write each filter as a table of a rule name and its options, e.g. { name = "norm_outlier", k = 4.0 }',
        ) from error
    if pipeline.makes_own_aggregate:
        raise FedmarketError("protocol rounds aggregate with RFFL; median/trimmed_mean cannot be filters")
    if model is not None:
        _check_first_layer(pipeline, model)
    return pipeline


def _check_first_layer(pipeline: AggregationPipeline, model: ModelSpec) -> None:
    """feature_outlier reads the first `units × inputs` parameters as the model's first weight matrix."""
    name, shape = next(iter(expected_shapes(model).items()))
    for rule in pipeline.rules:
        if isinstance(rule, FeatureOutlierFilter) and (rule.units, rule.inputs) != shape:
            raise FedmarketError(
                f"protocol filter feature_outlier reads a {rule.units} × {rule.inputs} first layer; the task's "
                f"model starts with {name} of shape {shape[0]} × {shape[1]}",
                hint=f"set inputs = {shape[1]} and units = {shape[0]}",
            )


def previous_updates(agg: RoundAggregator, task_id: int, round_: int, owners: Collection[int],
                     scale: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Each owner's (participant index) latest update accepted before `round_`, in the filters' float view: the
    history of rules that compare an owner with itself (consistency). It is read back from the chain and IPFS
    and checked against its commitments like the round's own updates, so a restarted aggregator, or another
    one, filters exactly as an uninterrupted one; an owner with no earlier update has no entry. The round this
    aggregator posted last is taken from memory (the updates it used, already checked)."""
    history: dict[str, np.ndarray] = {}
    missing = set(owners)
    posted_round, posted = agg.posted_updates.get(task_id, (0, {}))
    for earlier in range(round_ - 1, 0, -1):
        if not missing:
            break
        accepted = posted if posted_round == earlier else collect(agg, task_id, earlier).accepted
        for index, update in accepted.items():
            if index in missing:
                assert update.q is not None
                history[str(index)] = update.q.astype(np.float64) / float(1 << scale)
                missing.discard(index)
    return history


def _kept(
    pipeline: AggregationPipeline | None,
    q: np.ndarray,
    rows: list[int],
    sizes: list[int],
    base: list[int],
    scale: int,
    history: Mapping[str, np.ndarray] | None = None,
    trial: tuple[np.ndarray, ValidationLoss] | None = None,
) -> set[int]:
    """Rows the task's robust filters keep (float view of the quantized rows, history keyed by row index; `trial`:
    the global model and the validation loss, for rules that try an update on the validation set); clip is
    RFFL's own."""
    if pipeline is None or not rows:
        return set(rows)
    batch = UpdateBatch.from_updates(q[rows].astype(np.float64) / float(1 << scale))
    model, validation_loss = trial if trial is not None else (None, None)
    ctx = RoundContext(tuple(str(r) for r in rows), np.asarray([sizes[r] for r in rows], dtype=np.float64),
                       np.asarray([base[r] for r in rows], dtype=np.float64), history=history, model=model,
                       validation_loss=validation_loss)  # fmt: skip
    mask = pipeline.filter(batch, ctx).batch.kept
    return {r for r, ok in zip(rows, mask, strict=True) if ok}


def plan(agg: RoundAggregator, task_id: int, round_: int, collected: Collected) -> Planned:
    """Everything the round posts, computed and self-checked; no proof and no transaction yet."""
    started = time.perf_counter()
    info, spec = agg.task(task_id)
    rules = _rules(spec)
    n = len(collected.participants)
    d = sum(int(np.prod(s)) for s in spec.shapes.values())
    q = np.zeros((n, d), dtype=np.int64)
    sizes, blindings, salts = [0] * n, [0] * n, [0] * n
    for i, update in collected.accepted.items():
        assert update.q is not None and update.header.blinding is not None and update.header.salt is not None
        q[i], sizes[i] = update.q, update.header.num_samples
        blindings[i], salts[i] = update.header.blinding, update.header.salt
    submitted = [i in collected.accepted for i in range(n)]
    rounds_done, before = prior_reputations(agg.contract, task_id, round_, n)
    chain_removed = [bool(info.removed_mask >> i & 1) for i in range(n)]
    active = [not chain_removed[i] and (rounds_done == 0 or before[i] > 0) for i in range(n)]
    if rounds_done == 0:
        eligible = [sizes[i] if active[i] and submitted[i] else 0 for i in range(n)]
        base = fixedpoint.data_size_shares(eligible) if sum(eligible) else [0] * n
    else:
        base = list(before)
    live = [i for i in range(n) if submitted[i] and active[i]]
    pipeline = filter_pipeline(rules, spec.model)  # rffl-v2 to v4 allow no pipeline filter
    history = None
    if pipeline is not None and pipeline.needs_history and live:
        history = previous_updates(agg, task_id, round_, live, spec.scale_bits)
    previous = agg.files.model(info.model_cid, spec)
    theta = flatten(previous, spec.model)
    trial = None
    if pipeline is not None and pipeline.needs_validation and live:
        trial = (theta, _validation_loss(agg, spec))
    kept_rows = _kept(pipeline, q, live, sizes, base, spec.scale_bits, history, trial)
    kept = [i in kept_rows for i in range(n)]
    if rules.linked or rules.fixed_filters:  # the protocol's own filters: what rffl-v2 to v4 prove, else unproven
        live_rows = [submitted[i] and active[i] for i in range(n)]
        own = fixedpoint.filtered_rows(q, live_rows, base, rules.filter_threshold_fp, rules.norm_ratio_sq_fp)
        kept = [k and o for k, o in zip(kept, own, strict=True)]
    gamma_q = round(rules.gamma * (1 << spec.scale_bits))
    alpha_fp = fixedpoint.to_fixed(Fraction(rules.alpha))
    beta = rules.beta_in_round(round_)
    outcome = fixedpoint.rffl_round(
        q, submitted=submitted, kept=kept, active=active, base_weights=base, reputations=before,
        gamma_q=gamma_q, alpha_fp=alpha_fp, beta=beta, capped=rules.capped, missing_fp=rules.missing_score_fp,
    )  # fmt: skip
    weights = [int(w) for w in outcome.weights]
    removals = fixedpoint.removal_bits(info.removed_mask, active, outcome.removed, weights, round_ == info.terms.rounds)

    # the model: ū = ⌊S/D⌋ with S = Σ W_i q_i; the Pedersen commitment opens to S (the chain checks Σ W_i C_i)
    weighted_sum = (np.asarray(weights, dtype=np.int64) @ q) if n else np.zeros(d, dtype=np.int64)
    denominator = sum(base[i] for i in range(n) if kept[i] and active[i] and submitted[i])
    aggregate = outcome.aggregate.astype(np.int64)
    if denominator and not np.array_equal(aggregate, weighted_sum // denominator):
        raise RuntimeError("ū differs from ⌊S/D⌋ (aggregator bug)")
    model = unflatten(apply_aggregate(theta, aggregate, spec.scale_bits), spec.model)
    blinding = aggregate_blinding(blindings, weights)
    model_commitment = commit(weighted_sum, blinding, tag=rules.generator_tag)
    on_chain = [collected.submissions[i].commitment if i in collected.submissions else ZERO_POINT for i in range(n)]
    on_chain = [tuple(int(x) for x in c) for c in on_chain]
    if any(weights) and aggregate_commitment(on_chain, weights) != model_commitment:  # type: ignore[arg-type]
        raise RuntimeError("Σ W_i C_i does not equal the model commitment (aggregator bug)")
    salt = model_salt(task_id, round_, info.model_cid)

    # contributions: Shapley values on the owner's validation set, deterministic from chain data
    players = [i for i in range(n) if weights[i] > 0 and not outcome.removed[i]]
    seed = chain_seed(task_id, round_, info.model_cid)
    utilities, values, method = _shapley(agg, spec, rules, theta, q, players, seed)
    contributions = contributions_from_shapley(n, players, values, outcome.reputations)
    flags = [int(submitted[i]) + 2 * int(kept[i]) + 4 * int(active[i]) + 8 * int(outcome.removed[i]) for i in range(n)]
    poseidons = [poseidon_commitment(q[i], salts[i], rules) for i in range(n)]
    model_poseidon = poseidon_commitment(aggregate, salt, rules)
    record = RoundRecord(
        task_id=task_id, round=round_, previous_model_cid=info.model_cid, participants=collected.participants,
        scale_bits=spec.scale_bits, value_bits=rules.value_bits, generator_tag=rules.generator_tag,
        weighted_sum=[int(x) for x in weighted_sum.tolist()], denominator=int(denominator), model_blinding=blinding,
        model_salt=salt, weights=weights,
        poseidons=poseidons, model_poseidon=model_poseidon, gamma_q=gamma_q, alpha_fp=alpha_fp,
        beta=str(beta), base_weights=[int(b) for b in base], reputations_before=[int(r) for r in before],
        reputations_after=[int(r) for r in outcome.reputations], flags=flags,
        clip_factors=[int(c) for c in outcome.clip_factors], phis=[int(p) for p in outcome.phis], removals=removals,
        contributions=contributions, shapley_players=players, shapley_seed=seed, shapley_method=method,
        shapley_utilities={str(k): v for k, v in sorted(utilities.items())}, shapley_values=values,
        rejected=[{"data_owner": r.data_owner, "reason": r.reason} for r in collected.rejected],
        proof_mode=rules.proof, rule_version=rules.rule_version,
        filter_threshold=rules.filter_threshold_fp if rules.linked or rules.fixed_filters else 0,
        norm_ratio_sq=rules.norm_ratio_sq_fp if rules.capped else 0,
    )  # fmt: skip
    if rules.linked:  # the link is fixed by the commitments and the statement: publish it with the record
        digest = statement_digest(record.statement(), linked_rule(rules))
        link = link_round(q, blindings, on_chain, model_commitment, digest, submitted, rules)  # type: ignore[arg-type]
        record.link = {"digest": str(link.digest), "seed": str(link.seed), "t": str(link.t), "proof": link.link_proof}
    record_cid = agg.files.put(record.to_json())
    model_cid = agg.files.put_model(model, {"task_id": str(task_id), "round": str(round_), RECORD_KEY: record_cid})
    report = RoundReport(
        model_cid=model_cid,
        commitments=tuple(on_chain),  # type: ignore[arg-type]
        poseidons=tuple(int(collected.submissions[i].poseidon) if i in collected.submissions else 0 for i in range(n)),
        weights=tuple(weights),
        reputations=tuple(int(r) for r in outcome.reputations),
        contributions=tuple(contributions),
        removals=removals,
        model_commitment=model_commitment,
    )
    inputs = RoundInputs(
        q=q, submitted=submitted, kept=kept, active=active, base_weights=base, reputations=before, gamma_q=gamma_q,
        alpha_fp=alpha_fp, beta=beta, salts=salts, model_salt=salt,
    )  # fmt: skip
    timings = {"plan": time.perf_counter() - started}
    return Planned(report, record, inputs, model, collected, record_cid, timings)


def _validation_loss(agg: RoundAggregator, spec: TaskSpec) -> ValidationLoss:
    """Cross-entropy of parameter rows on the task's validation set (the overshoot rule's yardstick)."""
    validation = agg.validation(spec)
    return BatchedModelEvaluator(spec.model, validation.X, validation.y, "neg_loss").loss


def _shapley(
    agg: RoundAggregator,
    spec: TaskSpec,
    rules: ProtocolSpec,
    theta: np.ndarray,
    q: np.ndarray,
    players: list[int],
    seed: int,
) -> tuple[dict[int, float], list[float], str]:
    """Shapley values of the players' updates with the coalition utilities behind them (for the record)."""
    if not players:
        return {}, [], "none"
    options = dict(rules.shapley)
    metric = str(options.pop("metric", "accuracy"))
    method = str(options.pop("method", "auto"))
    exact_max = int(options.pop("exact_max_players", EXACT_MAX_PLAYERS))
    validation = agg.validation(spec)
    evaluate = BatchedModelEvaluator(spec.model, validation.X, validation.y, metric)
    deltas = q[players].astype(np.float64) / float(1 << spec.scale_bits)
    utility = CoalitionUtility(theta, deltas.astype(np.float32), evaluate)
    if method == "auto":
        method = "exact" if len(players) <= exact_max else "gtg"
    result = exact_shapley(utility) if method == "exact" else gtg_shapley(utility, seed, **options)
    return dict(utility.memo), [float(v) for v in result.values], method


def prove(agg: RoundAggregator, task_id: int, planned: Planned) -> Planned:
    """Attach the Groth16 rules proof when the task asks for one (layer 1 needs no proof bytes)."""
    _, spec = agg.task(task_id)
    rules = _rules(spec)
    if rules.proof != "groth16":
        return planned
    shape = circuit_shape(len(planned.collected.participants), planned.inputs.q.shape[1], rules)
    weights = list(planned.report.weights)
    if rules.linked:  # the adapter derives the seed from these commitments; the link is in the record
        link = planned.record.link
        expected = LinkedRound(int(link["digest"]), int(link["seed"]), int(link["t"]), link["proof"])
        proved = prove_linked_rules(
            shape, planned.inputs, weights, list(planned.report.commitments), planned.report.model_commitment,
            rules, expected, agg.key_cache,
        )  # fmt: skip
    else:
        proved = prove_rules(shape, planned.inputs, weights, agg.key_cache)
    planned.timings["prove"] = proved.seconds
    return replace(planned, report=replace(planned.report, proof=proved.proof))


def post(agg: RoundAggregator, task_id: int, round_: int, planned: Planned) -> RoundResult:
    """finalizeRound, unless the chain already has the round; settleRound at once when there is no window."""
    info, spec = agg.task(task_id)
    state = agg.contract.get_round(task_id, round_)
    if info.current_round != round_ or state.status is not RoundStatus.OPEN:
        raise RoundAlreadyPosted(f"round {round_} of task {task_id} is already {state.status.name.lower()}")
    try:
        finalize = agg.contract.finalize_round(task_id, round_, planned.report)
    except ContractRevert as exc:  # an earlier finalization of ours, pending when we looked, was mined first
        status = agg.contract.get_round(task_id, round_).status
        if status is RoundStatus.OPEN:
            raise
        raise RoundAlreadyPosted(f"round {round_} of task {task_id} became {status.name.lower()} meanwhile") from exc
    pipeline = filter_pipeline(_rules(spec))
    if pipeline is not None and pipeline.needs_history:  # next round's consistency rule reads these from memory
        agg.posted_updates[task_id] = (round_, dict(planned.collected.accepted))
    settle = None
    if info.terms.dispute_window == 0:
        settle = agg.contract.settle_round(task_id, round_, planned.report.contributions)
    accepted = [planned.collected.accepted[i] for i in sorted(planned.collected.accepted)]
    return RoundResult(
        task_id, round_, planned.report.model_cid, accepted, planned.collected.rejected,
        list(planned.report.contributions), finalize, settle, planned.record,
        planned.record_cid, dict(planned.timings),
    )  # fmt: skip


def run_protocol_round(agg: RoundAggregator, task_id: int, round_: int) -> RoundResult:
    """collect → plan → prove → post, in one call (the daemon runs the stages itself)."""
    started = time.perf_counter()
    planned = prove(agg, task_id, plan(agg, task_id, round_, collect(agg, task_id, round_)))
    result = post(agg, task_id, round_, planned)
    result.timings["round"] = time.perf_counter() - started
    return result
