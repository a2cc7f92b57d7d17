"""Read side: turns rows of the index into the API's shapes. Shared by the REST API and the dashboard."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session

from marketplace.chain.marketplace_contract import REPUTATION_ONE
from marketplace.service import schemas as s
from marketplace.service.content import ContentStore
from marketplace.service.db import (
    DisputeRow,
    EventRow,
    MemberRow,
    PayoutRow,
    RoundRow,
    SpecCache,
    SubmissionRow,
    TaskRow,
    WithdrawalRow,
)

STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "open": ("open",), "running": ("running",), "finished": ("finished",), "cancelled": ("cancelled",),
    "active": ("open", "running"), "closed": ("finished", "cancelled"),
}  # fmt: skip
ETH_TOKEN = "0x" + "00" * 20


def summary(task: TaskRow, name: str | None = None) -> s.TaskSummary:
    return s.TaskSummary(
        task_id=task.task_id, name=name, status=task.status, owner=task.owner, aggregator=task.aggregator,  # type: ignore[arg-type]
        token=task.token, reward=str(task.reward), stake=str(task.stake), rounds=task.rounds,
        current_round=task.current_round, data_owners=task.data_owners, max_data_owners=task.max_data_owners,
        unverified=task.unverified, verifier=task.verifier, spec_cid=task.spec_cid, model_cid=task.model_cid,
        join_deadline=task.join_deadline, created_block=task.created_block,
    )  # fmt: skip


def _spec_name(document: dict[str, Any] | None) -> str | None:
    return str(document.get("name") or "") or None if document else None


def names_cid(db: Session, cid: str) -> bool:
    """Whether an indexed event named `cid` (a task's spec or models, a round's models, an update, dispute
    evidence): the dashboard's IPFS proxy serves those and nothing else, so it is no open gateway."""
    named = union_all(
        select(TaskRow.task_id).where((TaskRow.spec_cid == cid) | (TaskRow.initial_model_cid == cid)
                                      | (TaskRow.model_cid == cid)),
        select(RoundRow.task_id).where((RoundRow.global_model_cid == cid) | (RoundRow.model_cid == cid)),
        select(SubmissionRow.task_id).where(SubmissionRow.update_cid == cid),
        select(DisputeRow.task_id).where(DisputeRow.evidence_cid == cid),
    ).subquery()
    return db.execute(select(func.count()).select_from(select(named).limit(1).subquery())).scalar_one() > 0


def list_tasks(
    db: Session, status: str | None, token: str | None, min_reward: int | None, limit: int, offset: int
) -> s.TaskPage:
    query = select(TaskRow)
    if status:
        query = query.where(TaskRow.status.in_(STATUS_GROUPS[status]))
    if token:
        query = query.where(TaskRow.token == (ETH_TOKEN if token.lower() == "eth" else token.lower()))
    if min_reward is not None:
        query = query.where(TaskRow.reward >= min_reward)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(TaskRow.task_id.desc()).limit(limit).offset(offset)).all()
    specs = db.scalars(select(SpecCache).where(SpecCache.cid.in_({r.spec_cid for r in rows}))).all()
    names = {c.cid: _spec_name(c.document) for c in specs}
    return s.TaskPage(items=[summary(r, names.get(r.spec_cid)) for r in rows], total=total, limit=limit, offset=offset)


def members(db: Session, task_id: int) -> list[s.Member]:
    rows = db.scalars(select(MemberRow).where(MemberRow.task_id == task_id).order_by(MemberRow.index)).all()
    return [
        s.Member(
            index=m.index, address=m.address, stake=str(m.stake), earned=str(m.earned), slashed=str(m.slashed),
            withdrawn=str(m.withdrawn), submissions=m.submissions, removed_round=m.removed_round,
        )
        for m in rows
    ]  # fmt: skip


def task_detail(db: Session, task: TaskRow, content: ContentStore) -> s.TaskDetail:
    spec, spec_error = content.spec_document(db, task.spec_cid)
    return s.TaskDetail(
        **summary(task, _spec_name(spec)).model_dump(), arbiter=task.arbiter, aggregator_bond=str(task.aggregator_bond),
        challenge_bond=str(task.challenge_bond), min_data_owners=task.min_data_owners, periods=task.periods,
        rules=task.rules, bond_posted=task.bond_posted, aggregator_fault=task.aggregator_fault,
        refunded_to_owner=str(task.refunded_to_owner), initial_model_cid=task.initial_model_cid,
        created_tx=task.created_tx, spec=spec, spec_error=spec_error, members=members(db, task.task_id),
    )  # fmt: skip


def _removed(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if (mask >> i) & 1]


def _proof(task: TaskRow, row: RoundRow) -> s.ProofStatus:
    """A finalized round passed the verifier on chain (the contract reverts otherwise)."""
    mode = "unverified" if task.unverified else "verified"
    if row.status == "open":
        status = "pending"
    elif row.status == "voided":
        status = "voided"
    elif row.status == "challenged":
        status = "disputed"
    else:
        status = "not-required" if task.unverified else "accepted"
    return s.ProofStatus(mode=mode, verifier=task.verifier, proof_bytes=row.proof_bytes, status=status)  # type: ignore[arg-type]


def round_view(task: TaskRow, row: RoundRow) -> s.Round:
    return s.Round(
        round=row.round, status=row.status, global_model_cid=row.global_model_cid,  # type: ignore[arg-type]
        model_cid=row.model_cid, submissions=row.submissions, submit_deadline=row.submit_deadline,
        aggregate_deadline=row.aggregate_deadline, dispute_deadline=row.dispute_deadline, weights=row.weights,
        reputations=row.reputations, contributions=row.contributions, removed=_removed(row.removals),
        accuracy=row.accuracy, accuracy_error=row.accuracy_error,
        gas=s.Gas(finalize=row.finalize_gas, settle=row.settle_gas), finalize_tx=row.finalize_tx,
        settle_tx=row.settle_tx, proof=_proof(task, row),
        pool=None if row.pool is None else str(row.pool), credited=None if row.credited is None else str(row.credited),
        to_owner=None if row.to_owner is None else str(row.to_owner),
    )  # fmt: skip


def round_rows(db: Session, task_id: int, limit: int = 10_000, offset: int = 0) -> list[RoundRow]:
    query = select(RoundRow).where(RoundRow.task_id == task_id).order_by(RoundRow.round)
    return list(db.scalars(query.limit(limit).offset(offset)).all())


def fill_accuracy(db: Session, task: TaskRow, rows: list[RoundRow], content: ContentStore) -> None:
    """Compute missing accuracies now (once per round, then cached); skipped without an IPFS node."""
    if not content.enabled:
        return
    for row in rows:
        content.round_accuracy(db, row, task.spec_cid)


def dispute_view(d: DisputeRow) -> s.Dispute:
    return s.Dispute(
        task_id=d.task_id, round=d.round, challenger=d.challenger, bond=str(d.bond), evidence_cid=d.evidence_cid,
        resolve_deadline=d.resolve_deadline, outcome=d.outcome, challenger_credit=str(d.challenger_credit),  # type: ignore[arg-type]
        to_pool=str(d.to_pool),
    )  # fmt: skip


def round_detail(db: Session, task: TaskRow, row: RoundRow) -> s.RoundDetail:
    key = (SubmissionRow.task_id == task.task_id, SubmissionRow.round == row.round)
    subs = db.scalars(select(SubmissionRow).where(*key).order_by(SubmissionRow.index)).all()
    pays = db.scalars(
        select(PayoutRow).where(PayoutRow.task_id == task.task_id, PayoutRow.round == row.round).order_by(PayoutRow.id)
    ).all()
    disputes = db.scalars(
        select(DisputeRow).where(DisputeRow.task_id == task.task_id, DisputeRow.round == row.round)
    ).all()
    return s.RoundDetail(
        **round_view(task, row).model_dump(), task_id=task.task_id,
        submissions_list=[
            s.Submission(index=x.index, data_owner=x.data_owner, update_cid=x.update_cid,
                         content_hash=x.content_hash, tx_hash=x.tx_hash) for x in subs
        ],
        payouts=[
            s.PayoutEntry(round=p.round, data_owner=p.data_owner, kind=p.kind, contribution=p.contribution,  # type: ignore[arg-type]
                          amount=str(p.amount)) for p in pays
        ],
        disputes=[dispute_view(d) for d in disputes],
    )  # fmt: skip


def series(db: Session, task: TaskRow, rows: list[RoundRow]) -> s.Series:
    """Per-round chart data: accuracy, reputation per owner, cumulative payouts and contribution shares."""
    owners = db.scalars(select(MemberRow).where(MemberRow.task_id == task.task_id).order_by(MemberRow.index)).all()
    credited: dict[tuple[int, str], int] = defaultdict(int)
    for p in db.scalars(select(PayoutRow).where(PayoutRow.task_id == task.task_id, PayoutRow.kind == "reward")):
        credited[(p.round, p.data_owner)] += p.amount
    finalized = [r for r in rows if r.contributions is not None]
    positive = [[max(int(c), 0) for c in r.contributions or []] for r in finalized]  # parsed once per round
    totals = [sum(values) if r.status != "voided" else 0 for r, values in zip(finalized, positive, strict=True)]
    reps_by_round = [[int(x) for x in r.reputations or []] for r in finalized]
    result: list[s.OwnerSeries] = []
    for member in owners:
        reputation: list[float | None] = []
        contribution: list[float] = []
        payout: list[str] = []
        cum_share, cum_paid = 0.0, 0
        for k, r in enumerate(finalized):
            reps, values, total = reps_by_round[k], positive[k], totals[k]
            reputation.append(reps[member.index] / REPUTATION_ONE if member.index < len(reps) else None)
            if total and member.index < len(values):
                cum_share += values[member.index] / total
            contribution.append(round(cum_share, 6))
            cum_paid += credited.get((r.round, member.address), 0)
            payout.append(str(cum_paid))
        result.append(
            s.OwnerSeries(index=member.index, address=member.address, removed_round=member.removed_round,
                          reputation=reputation, contribution=contribution, payout=payout)
        )  # fmt: skip
    removals = [
        {"round": m.removed_round, "index": m.index, "address": m.address} for m in owners if m.removed_round
    ]
    return s.Series(
        task_id=task.task_id, status=task.status, rounds=[r.round for r in finalized],  # type: ignore[arg-type]
        accuracy=[r.accuracy for r in finalized], owners=result, removals=removals,
    )


def event_out(e: EventRow) -> s.EventOut:
    return s.EventOut(
        block_number=e.block_number, tx_hash=e.tx_hash, log_index=e.log_index, name=e.name, task_id=e.task_id,
        round=e.round, args=_stringify_big(e.args),
    )  # fmt: skip


def _stringify_big(value: Any) -> Any:
    """Integers beyond 2**53 as strings, so JavaScript clients read them exactly."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > 2**53:
        return str(value)
    if isinstance(value, list):
        return [_stringify_big(v) for v in value]
    if isinstance(value, dict):
        return {k: _stringify_big(v) for k, v in value.items()}
    return value


def events_page(db: Session, task_id: int | None, account: str | None, name: str | None, limit: int, offset: int
                ) -> s.EventPage:
    query = select(EventRow)
    if task_id is not None:
        query = query.where(EventRow.task_id == task_id)
    if account:
        query = query.where(EventRow.account == account.lower())
    if name:
        query = query.where(EventRow.name == name)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(EventRow.block_number.desc(), EventRow.log_index.desc())
                      .limit(limit).offset(offset)).all()
    return s.EventPage(items=[event_out(e) for e in rows], total=total, limit=limit, offset=offset)


def account(db: Session, address: str, history_limit: int) -> s.Account:
    address = address.lower()
    sums: dict[str, dict[str, int]] = {k: defaultdict(int) for k in ("earned", "staked", "slashed", "withdrawn")}
    memberships: list[s.Membership] = []
    for member, task in db.execute(
        select(MemberRow, TaskRow).join(TaskRow, TaskRow.task_id == MemberRow.task_id)
        .where(MemberRow.address == address).order_by(MemberRow.task_id)
    ).all():
        sums["earned"][task.token] += member.earned
        sums["staked"][task.token] += member.stake
        sums["slashed"][task.token] += member.slashed
        memberships.append(
            s.Membership(task_id=task.task_id, task_status=task.status, token=task.token, index=member.index,  # type: ignore[arg-type]
                         stake=str(member.stake), earned=str(member.earned), slashed=str(member.slashed),
                         withdrawn=str(member.withdrawn), removed_round=member.removed_round)
        )  # fmt: skip
    for w in db.scalars(select(WithdrawalRow).where(WithdrawalRow.account == address)):
        sums["withdrawn"][w.token] += w.amount
    owned = db.scalars(select(TaskRow.task_id).where(TaskRow.owner == address).order_by(TaskRow.task_id)).all()
    aggregated = db.scalars(
        select(TaskRow.task_id).where(TaskRow.aggregator == address).order_by(TaskRow.task_id)
    ).all()
    history = events_page(db, None, address, None, history_limit, 0).items
    return s.Account(
        address=address, **{k: {t: str(v) for t, v in d.items()} for k, d in sums.items()},
        owned_tasks=list(owned), aggregated_tasks=list(aggregated), memberships=memberships, history=history,
    )


def withdrawals(db: Session, task_id: int | None, account_: str | None, limit: int, offset: int) -> list[s.Withdrawal]:
    query = select(WithdrawalRow)
    if task_id is not None:
        query = query.where(WithdrawalRow.task_id == task_id)
    if account_:
        query = query.where(WithdrawalRow.account == account_.lower())
    rows = db.scalars(query.order_by(WithdrawalRow.id).limit(limit).offset(offset)).all()
    return [
        s.Withdrawal(task_id=w.task_id, account=w.account, token=w.token, amount=str(w.amount),
                     block_number=w.block_number, tx_hash=w.tx_hash) for w in rows
    ]  # fmt: skip


def disputes(db: Session, task_id: int | None, limit: int, offset: int) -> list[s.Dispute]:
    query = select(DisputeRow)
    if task_id is not None:
        query = query.where(DisputeRow.task_id == task_id)
    return [dispute_view(d) for d in db.scalars(query.order_by(DisputeRow.id).limit(limit).offset(offset))]
