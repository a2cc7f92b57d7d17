"""A data owner that stays online: submits one update in every round of a task until the task ends.

Used by `fedmarket run` and by the demo's data-owner threads; restart-safe because it asks the chain
whether this account's update for the open round is already recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from client.data_owner import DataOwner, SubmissionReport, UpdateTransform
from marketplace.chain.marketplace_contract import TaskStatus
from marketplace.errors import ContractRevert, FedmarketError, ServiceUnavailableError
from marketplace.net import Backoff

# refusals that end this owner's round without an error: the round moved on, or (AlreadySubmitted) an earlier
# submission whose receipt an outage lost was still pending when the owner looked, and was mined first
ROUND_OVER_REVERTS = {"WrongRound", "SubmissionClosed", "WrongStatus", "AlreadySubmitted"}


@dataclass(frozen=True)
class FollowEvent:
    """What happened to a following data owner: `kind` is submitted, skipped, retrying (the IPFS node or the chain
    failed, so the round is asked about again after a wait: submitted then unless the chain has the update),
    removed, error or done. `round` is 0 in a retry that failed before a round was chosen."""

    kind: str
    round: int
    detail: str = ""
    report: SubmissionReport | None = None


def already_submitted(owner: DataOwner, task_id: int, round_: int) -> bool:
    index = owner.contract.get_participant(task_id, owner.address).index
    return index in owner.contract.submissions(task_id, round_)


def follow_task(
    owner: DataOwner,
    task_id: int,
    on_event: Callable[[FollowEvent], None] = lambda _e: None,
    transform_for: Callable[[int], UpdateTransform | None] = lambda _r: None,
    poll_seconds: float = 0.5,
    stop: threading.Event | None = None,
    progress: Callable[[int, int], None] | None = None,
    give_up_after: float | None = None,
) -> int:
    """Submit in every round until the task finishes or is cancelled; returns the number of updates sent.
    An outage is waited out, or ends it with OutageTooLongError after `give_up_after` seconds in a row."""
    stop = stop or threading.Event()
    done: set[int] = set()
    sent = 0
    retry = Backoff(2 * poll_seconds, give_up_after)
    while not stop.is_set():
        attempted: int | None = None  # the round this pass tries, if any
        try:
            info = owner.contract.get_task(task_id)
            if info.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED):
                on_event(FollowEvent("done", info.current_round, info.status.name.lower()))
                return sent
            me = owner.contract.get_participant(task_id, owner.address)
            if info.removed_mask >> me.index & 1:
                on_event(FollowEvent("removed", info.current_round, "by the aggregation rules; no more submissions"))
                return sent
            round_ = info.current_round
            if info.status is TaskStatus.RUNNING and round_ not in done:
                done.add(round_)
                attempted = round_
                report = _submit_once(owner, task_id, round_, on_event, transform_for(round_), progress)
                if report is not None:
                    sent += 1
                    on_event(FollowEvent("submitted", round_, report.update_cid, report))
        except ServiceUnavailableError as exc:  # the round is asked about again next pass
            if attempted is not None:
                done.discard(attempted)
            wait = retry.failed(exc)
            on_event(FollowEvent("retrying", attempted or 0, f"{exc}; next try in {wait:.1f} s"))
            stop.wait(wait)
            continue
        retry.clear()
        stop.wait(poll_seconds)
    return sent


def _submit_once(
    owner: DataOwner,
    task_id: int,
    round_: int,
    on_event: Callable[[FollowEvent], None],
    transform: UpdateTransform | None,
    progress: Callable[[int, int], None] | None,
) -> SubmissionReport | None:
    """Train and submit unless the chain has this account's update (a try the chain failed to confirm may
    have landed); a refusal or bad input is reported and the round is over for this owner. An unavailable
    chain or node propagates: the caller tries the round again."""
    if already_submitted(owner, task_id, round_):
        on_event(FollowEvent("skipped", round_, "already submitted"))
        return None
    try:
        return owner.train_and_submit(task_id, round_, progress, transform=transform)
    except ServiceUnavailableError:
        raise
    except ContractRevert as exc:
        if exc.error_name not in ROUND_OVER_REVERTS:
            raise
        on_event(FollowEvent("skipped", round_, exc.error_name))
    except FedmarketError as exc:
        on_event(FollowEvent("error", round_, str(exc)))
    return None


def wait_until(predicate: Callable[[], bool], timeout: float, poll_seconds: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_seconds)
    return predicate()
