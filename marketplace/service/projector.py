"""Turns each contract event into rows of the derived tables; replaying a task's events rebuilds them exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketplace.chain import events as ev
from marketplace.chain.marketplace_contract import TaskTerms
from marketplace.service.db import (
    DisputeRow,
    EventRow,
    MemberRow,
    PayoutRow,
    RoundRow,
    SubmissionRow,
    TaskRow,
    WithdrawalRow,
)

ACCOUNT_FIELD = {
    "TaskCreated": "owner", "BondPosted": "aggregator", "Joined": "data_owner", "UpdateSubmitted": "data_owner",
    "RoundChallenged": "challenger", "DisputeResolved": "challenger", "DisputeLapsed": "challenger",
    "RewardCredited": "data_owner", "Slashed": "data_owner", "TaskCancelled": "caller", "Withdrawn": "account",
}  # fmt: skip


def jsonable(value: Any) -> Any:
    """Event values as JSON: bytes as 0x-hex, tuples as lists; integers stay exact."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    return value


def event_row(event: ev.ChainEvent, block_hash: str) -> EventRow:
    args = {f.name: jsonable(getattr(event, f.name)) for f in fields(event)}
    for key in ("block_number", "tx_hash", "log_index"):
        args.pop(key)
    account = args.get(ACCOUNT_FIELD.get(event.NAME, ""))
    return EventRow(
        block_number=event.block_number,
        block_hash=block_hash,
        tx_hash=event.tx_hash,
        log_index=event.log_index,
        name=event.NAME,
        task_id=int(args["task_id"]),
        round=args.get("round"),
        account=account.lower() if isinstance(account, str) else None,
        args=args,
    )


def _strs(values: tuple[int, ...]) -> list[str]:
    return [str(v) for v in values]


def _task(db: Session, task_id: int) -> TaskRow | None:
    return db.get(TaskRow, task_id)


def _round(db: Session, task_id: int, round_: int) -> RoundRow | None:
    return db.get(RoundRow, (task_id, round_))


def _member(db: Session, task_id: int, address: str) -> MemberRow | None:
    query = select(MemberRow).where(MemberRow.task_id == task_id, MemberRow.address == address.lower())
    return db.scalars(query).first()


def _task_created(db: Session, e: ev.TaskCreated) -> None:
    terms = TaskTerms.from_abi(e.terms)
    rules = terms.rules
    db.merge(
        TaskRow(
            task_id=e.task_id, owner=e.owner.lower(), aggregator=e.aggregator.lower(), arbiter=terms.arbiter.lower(),
            verifier=terms.verifier.lower(), token=terms.token.lower(), reward=terms.reward, stake=terms.stake,
            aggregator_bond=terms.aggregator_bond, challenge_bond=terms.challenge_bond, unverified=e.unverified,
            rounds=terms.rounds, min_data_owners=terms.min_data_owners, max_data_owners=terms.max_data_owners,
            periods={
                "join": terms.join_period, "submission": terms.submission_period,
                "aggregation": terms.aggregation_period, "dispute_window": terms.dispute_window,
                "arbitration": terms.arbitration_period,
            },
            rules={
                "clip_norm": rules.clip_norm, "alpha_ppm": rules.alpha_ppm, "beta_ppm": rules.beta_ppm,
                "slash_bps": rules.slash_bps, "payout_policy": rules.payout_policy.name.lower(),
            },
            spec_cid=e.spec_cid, initial_model_cid=e.initial_model_cid, model_cid=e.initial_model_cid,
            join_deadline=e.join_deadline, status="open", data_owners=0, current_round=0, bond_posted=False,
            aggregator_fault=False, refunded_to_owner=0, created_block=e.block_number, created_tx=e.tx_hash,
        )
    )  # fmt: skip


def _bond_posted(db: Session, e: ev.BondPosted) -> None:
    if task := _task(db, e.task_id):
        task.bond_posted = True


def _joined(db: Session, e: ev.Joined) -> None:
    db.merge(
        MemberRow(
            task_id=e.task_id, index=e.index, address=e.data_owner.lower(), stake=e.stake, earned=0, slashed=0,
            removed_round=None, submissions=0, withdrawn=0, joined_block=e.block_number,
        )
    )  # fmt: skip
    if task := _task(db, e.task_id):
        task.data_owners = max(task.data_owners, e.index + 1)


def _task_started(db: Session, e: ev.TaskStarted) -> None:
    if task := _task(db, e.task_id):
        task.status, task.data_owners = "running", e.data_owners


def _round_opened(db: Session, e: ev.RoundOpened) -> None:
    db.merge(
        RoundRow(
            task_id=e.task_id, round=e.round, status="open", global_model_cid=e.global_model_cid,
            submit_deadline=e.submit_deadline, aggregate_deadline=e.aggregate_deadline, submissions=0, removals=0,
        )
    )  # fmt: skip
    if task := _task(db, e.task_id):
        task.current_round = e.round
        task.model_cid = e.global_model_cid


def _update_submitted(db: Session, e: ev.UpdateSubmitted) -> None:
    db.merge(
        SubmissionRow(
            task_id=e.task_id, round=e.round, index=e.index, data_owner=e.data_owner.lower(),
            update_cid=e.update_cid, content_hash="0x" + e.content_hash.hex(), tx_hash=e.tx_hash,
        )
    )  # fmt: skip
    if row := _round(db, e.task_id, e.round):
        row.submissions += 1
    if member := _member(db, e.task_id, e.data_owner):
        member.submissions += 1


def _round_finalized(db: Session, e: ev.RoundFinalized) -> None:
    row = _round(db, e.task_id, e.round)
    if row is None:
        return
    row.status = "finalized"
    row.model_cid = e.model_cid
    row.model_commitment = _strs(e.model_commitment)
    row.weights, row.reputations = _strs(e.weights), _strs(e.reputations)
    row.contributions = _strs(e.contributions)
    row.removals, row.dispute_deadline, row.finalize_tx = e.removals, e.dispute_deadline, e.tx_hash
    if task := _task(db, e.task_id):
        task.model_cid = e.model_cid
    for member in db.scalars(select(MemberRow).where(MemberRow.task_id == e.task_id)):
        if (e.removals >> member.index) & 1 and member.removed_round is None:
            member.removed_round = e.round


def _round_challenged(db: Session, e: ev.RoundChallenged) -> None:
    db.add(
        DisputeRow(
            task_id=e.task_id, round=e.round, challenger=e.challenger.lower(), bond=e.bond,
            evidence_cid=e.evidence_cid, resolve_deadline=e.resolve_deadline, outcome="open",
            challenger_credit=0, to_pool=0,
        )
    )  # fmt: skip
    if row := _round(db, e.task_id, e.round):
        row.status = "challenged"


def _open_dispute(db: Session, task_id: int, round_: int) -> DisputeRow | None:
    query = select(DisputeRow).where(
        DisputeRow.task_id == task_id, DisputeRow.round == round_, DisputeRow.outcome == "open"
    )
    return db.scalars(query.order_by(DisputeRow.id.desc())).first()


def _dispute_resolved(db: Session, e: ev.DisputeResolved) -> None:
    if dispute := _open_dispute(db, e.task_id, e.round):
        dispute.outcome = "upheld" if e.upheld else "rejected"
        dispute.challenger_credit, dispute.to_pool = e.challenger_credit, e.to_pool
    row = _round(db, e.task_id, e.round)
    if row is None:
        return
    row.status = "voided" if e.upheld else "finalized"
    if e.upheld:  # a voided round's removals are undone
        for member in db.scalars(select(MemberRow).where(MemberRow.task_id == e.task_id)):
            if member.removed_round == e.round:
                member.removed_round = None


def _dispute_lapsed(db: Session, e: ev.DisputeLapsed) -> None:
    if dispute := _open_dispute(db, e.task_id, e.round):
        dispute.outcome = "lapsed"
        dispute.challenger_credit = e.refunded
    if (row := _round(db, e.task_id, e.round)) and row.status == "challenged":
        row.status = "finalized"


def _reward_credited(db: Session, e: ev.RewardCredited) -> None:
    db.add(
        PayoutRow(
            task_id=e.task_id, round=e.round, data_owner=e.data_owner.lower(), kind="reward",
            contribution=str(e.contribution), amount=e.amount,
        )
    )  # fmt: skip
    if member := _member(db, e.task_id, e.data_owner):
        member.earned += e.amount


def _slashed(db: Session, e: ev.Slashed) -> None:
    db.add(PayoutRow(task_id=e.task_id, round=e.round, data_owner=e.data_owner.lower(), kind="slash", amount=e.amount))
    if member := _member(db, e.task_id, e.data_owner):
        member.slashed += e.amount


def _round_settled(db: Session, e: ev.RoundSettled) -> None:
    if row := _round(db, e.task_id, e.round):
        row.status = "voided" if e.voided else "settled"
        row.pool, row.credited, row.to_owner, row.settle_tx = e.pool, e.credited, e.to_owner, e.tx_hash
    if task := _task(db, e.task_id):
        task.refunded_to_owner += e.to_owner


def _task_finished(db: Session, e: ev.TaskFinished) -> None:
    if task := _task(db, e.task_id):
        task.status, task.model_cid = "finished", e.final_model_cid


def _task_cancelled(db: Session, e: ev.TaskCancelled) -> None:
    if task := _task(db, e.task_id):
        task.status, task.aggregator_fault = "cancelled", e.aggregator_fault
        task.refunded_to_owner += e.to_owner


def _withdrawn(db: Session, e: ev.Withdrawn) -> None:
    db.add(
        WithdrawalRow(
            task_id=e.task_id, account=e.account.lower(), token=e.token.lower(), amount=e.amount,
            block_number=e.block_number, tx_hash=e.tx_hash,
        )
    )  # fmt: skip
    if member := _member(db, e.task_id, e.account):
        member.withdrawn += e.amount


HANDLERS: dict[str, Callable[[Session, Any], None]] = {
    "TaskCreated": _task_created, "BondPosted": _bond_posted, "Joined": _joined, "TaskStarted": _task_started,
    "RoundOpened": _round_opened, "UpdateSubmitted": _update_submitted, "RoundFinalized": _round_finalized,
    "RoundChallenged": _round_challenged, "DisputeResolved": _dispute_resolved, "DisputeLapsed": _dispute_lapsed,
    "RewardCredited": _reward_credited, "Slashed": _slashed, "RoundSettled": _round_settled,
    "TaskFinished": _task_finished, "TaskCancelled": _task_cancelled, "Withdrawn": _withdrawn,
}  # fmt: skip


def apply(db: Session, event: ev.ChainEvent) -> None:
    """Fold one event into the derived tables (the caller flushes in event order)."""
    HANDLERS[event.NAME](db, event)
    db.flush()


def from_row(row: EventRow) -> ev.ChainEvent:
    """The typed event back from its stored row, for replays after a reorg."""
    cls = ev.EVENT_TYPES[row.name]
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in ("block_number", "tx_hash", "log_index"):
            continue
        value = row.args[f.name]
        if isinstance(value, str) and value.startswith("0x") and f.name == "content_hash":
            value = bytes.fromhex(value[2:])
        elif isinstance(value, list):
            value = _tupled(value)
        values[f.name] = value
    return cls(block_number=row.block_number, tx_hash=row.tx_hash, log_index=row.log_index, **values)


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def rebuild_tasks(db: Session, task_ids: set[int]) -> None:
    """Drop the derived rows of these tasks and replay their stored events, in chain order."""
    if not task_ids:
        return
    ids = sorted(task_ids)
    keep: dict[tuple[int, int], tuple[Any, ...]] = {}
    for row in db.scalars(select(RoundRow).where(RoundRow.task_id.in_(ids))):
        keep[(row.task_id, row.round)] = (row.finalize_gas, row.settle_gas, row.proof_bytes, row.finalize_tx,
                                          row.settle_tx, row.accuracy, row.accuracy_error, row.model_cid)
    for table in (MemberRow, RoundRow, SubmissionRow, PayoutRow, DisputeRow, WithdrawalRow, TaskRow):
        db.execute(delete(table).where(table.task_id.in_(ids)))
    db.flush()
    query = select(EventRow).where(EventRow.task_id.in_(ids)).order_by(EventRow.block_number, EventRow.log_index)
    for row in db.scalars(query).all():
        apply(db, from_row(row))
    for row in db.scalars(select(RoundRow).where(RoundRow.task_id.in_(ids))):
        saved = keep.get((row.task_id, row.round))
        if saved and saved[3] == row.finalize_tx:  # same finalize transaction: its gas and accuracy still hold
            row.finalize_gas, _, row.proof_bytes = saved[0], saved[1], saved[2]
            if saved[7] == row.model_cid:
                row.accuracy, row.accuracy_error = saved[5], saved[6]
        if saved and saved[4] == row.settle_tx:
            row.settle_gas = saved[1]
