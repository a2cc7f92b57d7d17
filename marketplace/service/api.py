"""The REST API under /api (plus /health): read-only views of the index, validated inputs, clear 4xx errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from sqlalchemy.orm import Session

from marketplace.chain import events as ev
from marketplace.service import schemas as s
from marketplace.service import views
from marketplace.service.db import RoundRow, TaskRow
from marketplace.service.state import ServiceState

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
MAX_ID = 2**53  # task and round ids beyond this cannot exist in the index (SQL integers)

TaskId = Annotated[int, Path(ge=0, le=MAX_ID, description="the task's id on chain")]
RoundNo = Annotated[int, Path(ge=1, le=2**32 - 1, description="round number, from 1")]
AddressPath = Annotated[str, Path(pattern=ADDRESS, description="0x-prefixed 20-byte address")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10**9)]

router = APIRouter()


def state(request: Request) -> ServiceState:
    return request.app.state.service  # type: ignore[no-any-return]


def database(request: Request) -> Iterator[Session]:
    with state(request).sessions() as db:
        yield db


Db = Annotated[Session, Depends(database)]
State = Annotated[ServiceState, Depends(state)]


def _task(db: Session, task_id: int) -> TaskRow:
    task = db.get(TaskRow, task_id)
    if task is None:
        raise HTTPException(404, f"task {task_id} not found (or not indexed yet)")
    return task


def _round(db: Session, task_id: int, round_: int) -> RoundRow:
    row = db.get(RoundRow, (task_id, round_))
    if row is None:
        raise HTTPException(404, f"round {round_} of task {task_id} not found (or not opened yet)")
    return row


@router.get("/health", response_model=s.Health, tags=["service"])
def health(st: State) -> s.Health:
    """Liveness plus how far the index is behind the chain."""
    status = st.indexer_status
    lag = None
    if status.head_block is not None and status.indexed_block is not None:
        lag = max(status.head_block - status.indexed_block, 0)
    return s.Health(
        status="ok" if status.last_error is None else "degraded", contract=st.contract,
        head_block=status.head_block, indexed_block=status.indexed_block, lag_blocks=lag,
        events_indexed=status.events_indexed, reorgs=status.reorgs, last_error=status.last_error,
        ipfs=st.content.enabled,
    )  # fmt: skip


@router.get("/api/tasks", response_model=s.TaskPage, tags=["tasks"])
def list_tasks(
    db: Db,
    status: Annotated[s.StatusFilter | None, Query(description="active = open or running; closed = the rest")] = None,
    token: Annotated[str | None, Query(pattern=r"^(eth|ETH|0x[0-9a-fA-F]{40})$")] = None,
    min_reward: Annotated[int | None, Query(ge=0, le=2**256 - 1, description="in the token's base unit")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> s.TaskPage:
    """Tasks, newest first."""
    return views.list_tasks(db, status, token, min_reward, limit, offset)


@router.get("/api/tasks/{task_id}", response_model=s.TaskDetail, tags=["tasks"])
def task_detail(task_id: TaskId, db: Db, st: State) -> s.TaskDetail:
    """Terms, state, data owners, and the spec from IPFS (fetched once, then cached)."""
    return views.task_detail(db, _task(db, task_id), st.content)


@router.get("/api/tasks/{task_id}/rounds", response_model=list[s.Round], tags=["rounds"])
def task_rounds(task_id: TaskId, db: Db, st: State, limit: Limit = 100, offset: Offset = 0) -> list[s.Round]:
    """Rounds with accuracy (computed on the validation set once, cached), weights, reputations, gas, proofs."""
    task = _task(db, task_id)
    rows = views.round_rows(db, task_id, limit, offset)
    views.fill_accuracy(db, task, rows, st.content)
    return [views.round_view(task, r) for r in rows]


@router.get("/api/tasks/{task_id}/rounds/{round_no}", response_model=s.RoundDetail, tags=["rounds"])
def round_detail(task_id: TaskId, round_no: RoundNo, db: Db, st: State) -> s.RoundDetail:
    """One round with its submissions, payouts, slashes and disputes."""
    task = _task(db, task_id)
    row = _round(db, task_id, round_no)
    views.fill_accuracy(db, task, [row], st.content)
    return views.round_detail(db, task, row)


@router.get("/api/tasks/{task_id}/series", response_model=s.Series, tags=["rounds"])
def task_series(task_id: TaskId, db: Db, st: State) -> s.Series:
    """The task page's chart data in one document."""
    task = _task(db, task_id)
    rows = views.round_rows(db, task_id)
    views.fill_accuracy(db, task, rows, st.content)
    return views.series(db, task, rows)


@router.get("/api/tasks/{task_id}/members", response_model=list[s.Member], tags=["tasks"])
def task_members(task_id: TaskId, db: Db) -> list[s.Member]:
    _task(db, task_id)
    return views.members(db, task_id)


@router.get("/api/accounts/{address}", response_model=s.Account, tags=["accounts"])
def account(address: AddressPath, db: Db, history: Annotated[int, Query(ge=0, le=500)] = 50) -> s.Account:
    """Earnings, stakes, slashes and withdrawals per token, the account's tasks, and its latest events."""
    return views.account(db, address, history)


@router.get("/api/events", response_model=s.EventPage, tags=["history"])
def events(
    db: Db,
    task_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    account: Annotated[str | None, Query(pattern=ADDRESS)] = None,
    name: Annotated[str | None, Query(description="an event name, e.g. RoundFinalized")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> s.EventPage:
    """Indexed contract events, newest first."""
    if name is not None and name not in ev.EVENT_TYPES:
        raise HTTPException(400, f"unknown event {name!r}; one of {', '.join(ev.EVENT_TYPES)}")
    return views.events_page(db, task_id, account, name, limit, offset)


@router.get("/api/disputes", response_model=list[s.Dispute], tags=["history"])
def disputes(
    db: Db, task_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None, limit: Limit = 50, offset: Offset = 0
) -> list[s.Dispute]:
    return views.disputes(db, task_id, limit, offset)


@router.get("/api/withdrawals", response_model=list[s.Withdrawal], tags=["history"])
def withdrawals(
    db: Db,
    task_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    account: Annotated[str | None, Query(pattern=ADDRESS)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[s.Withdrawal]:
    return views.withdrawals(db, task_id, account, limit, offset)
