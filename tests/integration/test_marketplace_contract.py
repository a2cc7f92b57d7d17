"""The Marketplace contract on a real Anvil chain: the money flow and every revert path."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from marketplace.chain.anvil import advance_time
from marketplace.chain.events import RewardCredited, RoundFinalized, RoundOpened, TaskFinished
from marketplace.chain.marketplace_contract import MarketplaceContract, TaskStatus
from marketplace.chain.session import ChainSession
from marketplace.errors import ContractRevert

pytestmark = pytest.mark.integration

REWARD = 10**18 + 7  # not divisible by the round count: rounding dust must reach the owner's refund
STAKE = 10**17
ROUNDS = 2
DURATION = 600
OWNER, AGGREGATOR, STRANGER = 0, 1, 2
DATA_OWNERS = (3, 4, 5)

SessionFor = Callable[[int], ChainSession]


def reverts(name: str, call: Callable[[], object]) -> ContractRevert:
    with pytest.raises(ContractRevert) as info:
        call()
    assert info.value.error_name == name, str(info.value)
    return info.value


def new_task(mk: MarketplaceContract, session_for: SessionFor, **overrides: object) -> int:
    terms: dict[str, object] = {
        "spec_cid": "bafyspec",
        "initial_model_cid": "bafymodel0",
        "reward": REWARD,
        "stake": STAKE,
        "rounds": ROUNDS,
        "round_duration": DURATION,
        "aggregator": session_for(AGGREGATOR).address,
        "max_participants": 3,
    }
    terms.update(overrides)
    task_id, _ = mk.create_task(**terms)  # type: ignore[arg-type]
    return task_id


def as_account(mk: MarketplaceContract, session_for: SessionFor, index: int) -> MarketplaceContract:
    return mk.with_session(session_for(index))


def started_task(mk: MarketplaceContract, session_for: SessionFor) -> int:
    task_id = new_task(mk, session_for)
    for i in DATA_OWNERS:
        as_account(mk, session_for, i).join(task_id, STAKE)
    mk.start_task(task_id)
    return task_id


def submit_all(mk: MarketplaceContract, session_for: SessionFor, task_id: int, round_: int) -> None:
    for i in DATA_OWNERS:
        as_account(mk, session_for, i).submit_update(task_id, round_, f"bafyupdate{i}r{round_}", bytes([i]) * 32)


def test_full_task_conserves_every_wei(marketplace: MarketplaceContract, session_for: SessionFor) -> None:
    mk, w3 = marketplace, marketplace.session.w3
    task_id = started_task(mk, session_for)
    aggregator = as_account(mk, session_for, AGGREGATOR)
    contributions = {1: [1, 2, 3], 2: [5, 0, 5]}
    for round_ in (1, 2):
        submit_all(mk, session_for, task_id, round_)
        result = aggregator.finalize_round(task_id, round_, f"bafymodel{round_}", contributions[round_])
        finalized = result.first(RoundFinalized)
        assert finalized.round_reward == REWARD // ROUNDS
        credited = [e for e in result.events if isinstance(e, RewardCredited)]
        assert [e.amount for e in credited] == [
            REWARD // ROUNDS * c // sum(contributions[round_]) for c in contributions[round_] if c
        ]
        if round_ < ROUNDS:
            assert result.first(RoundOpened).global_model_cid == "bafymodel1"
        else:
            assert result.first(TaskFinished).final_model_cid == "bafymodel2"

    task = mk.get_task(task_id)
    assert task.status is TaskStatus.FINISHED and task.model_cid == "bafymodel2"
    earned = [mk.get_participant(task_id, session_for(i).address).earned for i in DATA_OWNERS]
    assert sum(earned) == task.credited
    assert w3.eth.get_balance(mk.address) == REWARD + 3 * STAKE

    paid = 0
    for i, reward in zip(DATA_OWNERS, earned, strict=True):
        event = as_account(mk, session_for, i).withdraw(task_id).events[0]
        assert (event.reward, event.stake) == (reward, STAKE)
        paid += reward + STAKE
    refund = mk.refund(task_id).events[0].amount
    assert refund == REWARD - task.credited > 0  # includes the rounding dust
    # escrow + stakes = rewards paid + refunds + contract balance
    assert paid + refund + w3.eth.get_balance(mk.address) == REWARD + 3 * STAKE
    assert w3.eth.get_balance(mk.address) == 0


def test_withdraw_moves_exact_amounts(marketplace: MarketplaceContract, session_for: SessionFor) -> None:
    mk, w3 = marketplace, marketplace.session.w3
    task_id = new_task(mk, session_for, rounds=1)
    data_owner = as_account(mk, session_for, DATA_OWNERS[0])
    data_owner.join(task_id, STAKE)
    mk.start_task(task_id)
    data_owner.submit_update(task_id, 1, "bafyu", b"\x01" * 32)
    as_account(mk, session_for, AGGREGATOR).finalize_round(task_id, 1, "bafym", [1])
    before = w3.eth.get_balance(data_owner.session.address)
    result = data_owner.withdraw(task_id)
    fee = result.tx.gas_used * result.tx.receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(data_owner.session.address) == before - fee + REWARD + STAKE


def test_missed_round_earns_nothing_and_zero_round_refunds(
    marketplace: MarketplaceContract, session_for: SessionFor
) -> None:
    mk = marketplace
    task_id = started_task(mk, session_for)
    first, second = (as_account(mk, session_for, i) for i in DATA_OWNERS[:2])
    first.submit_update(task_id, 1, "bafyu1", b"\x01" * 32)
    aggregator = as_account(mk, session_for, AGGREGATOR)
    reverts("RoundStillOpen", lambda: aggregator.finalize_round(task_id, 1, "bafym1", [1, 0, 0]))
    advance_time(mk.session.w3, DURATION + 1)
    reverts("SubmissionClosed", lambda: second.submit_update(task_id, 1, "bafyu2", b"\x02" * 32))
    error = reverts("ContributionWithoutSubmission", lambda: aggregator.finalize_round(task_id, 1, "m", [1, 1, 0]))
    assert error.error_args["account"] == second.session.address
    aggregator.finalize_round(task_id, 1, "bafym1", [1, 0, 0])
    advance_time(mk.session.w3, DURATION + 1)
    aggregator.finalize_round(task_id, 2, "bafym2", [0, 0, 0])  # nobody submitted: nothing credited
    assert mk.get_participant(task_id, first.session.address).earned == REWARD // ROUNDS
    assert mk.get_participant(task_id, second.session.address).earned == 0
    assert mk.refund(task_id).events[0].amount == REWARD - REWARD // ROUNDS


def test_create_task_rejects_bad_terms(marketplace: MarketplaceContract, session_for: SessionFor) -> None:
    mk = marketplace
    reverts("InvalidTerms", lambda: new_task(mk, session_for, reward=0))
    reverts("InvalidTerms", lambda: new_task(mk, session_for, rounds=0))
    reverts("InvalidTerms", lambda: new_task(mk, session_for, round_duration=0))
    reverts("InvalidTerms", lambda: new_task(mk, session_for, aggregator="0x" + "00" * 20))
    reverts("InvalidTerms", lambda: new_task(mk, session_for, max_participants=0))
    reverts("InvalidTerms", lambda: new_task(mk, session_for, max_participants=257))
    reverts("EmptyCid", lambda: new_task(mk, session_for, spec_cid=""))
    reverts("TaskNotFound", lambda: mk.get_task(99))
    assert mk.task_count() == 0


def test_join_rules(marketplace: MarketplaceContract, session_for: SessionFor) -> None:
    mk = marketplace
    task_id = new_task(mk, session_for, max_participants=2)
    a, b, c = (as_account(mk, session_for, i) for i in DATA_OWNERS)
    error = reverts("WrongStake", lambda: a.join(task_id, STAKE - 1))
    assert error.error_args == {"expected": STAKE, "sent": STAKE - 1}
    a.join(task_id, STAKE)
    reverts("AlreadyJoined", lambda: a.join(task_id, STAKE))
    b.join(task_id, STAKE)
    reverts("TaskFull", lambda: c.join(task_id, STAKE))
    reverts("NotTaskOwner", lambda: a.start_task(task_id))
    mk.start_task(task_id)
    reverts("WrongStatus", lambda: c.join(task_id, STAKE))
    reverts("WrongStatus", lambda: mk.start_task(task_id))
    empty = new_task(mk, session_for)
    reverts("NoParticipants", lambda: mk.start_task(empty))
    reverts("TaskNotFound", lambda: a.join(12345, STAKE))


def test_submission_rules(marketplace: MarketplaceContract, session_for: SessionFor) -> None:
    mk = marketplace
    task_id = new_task(mk, session_for)
    a = as_account(mk, session_for, DATA_OWNERS[0])
    a.join(task_id, STAKE)
    reverts("WrongStatus", lambda: a.submit_update(task_id, 1, "bafyu", b"\x01"))
    mk.start_task(task_id)
    stranger = as_account(mk, session_for, STRANGER)
    reverts("NotParticipant", lambda: stranger.submit_update(task_id, 1, "bafyu", b"\x01"))
    reverts("WrongRound", lambda: a.submit_update(task_id, 2, "bafyu", b"\x01"))
    reverts("EmptyCid", lambda: a.submit_update(task_id, 1, "", b"\x01"))
    a.submit_update(task_id, 1, "bafyu", b"\x01")
    reverts("AlreadySubmitted", lambda: a.submit_update(task_id, 1, "bafyu2", b"\x02"))
    assert mk.submission_count(task_id, 1) == 1
    assert mk.submission_digest(task_id, 1, a.session.address) != bytes(32)


def test_finalize_and_payout_rules(marketplace: MarketplaceContract, session_for: SessionFor) -> None:
    mk = marketplace
    task_id = new_task(mk, session_for, rounds=1)
    a = as_account(mk, session_for, DATA_OWNERS[0])
    a.join(task_id, STAKE)
    mk.start_task(task_id)
    a.submit_update(task_id, 1, "bafyu", b"\x01")
    aggregator = as_account(mk, session_for, AGGREGATOR)
    reverts("NotAggregator", lambda: a.finalize_round(task_id, 1, "bafym", [1]))
    reverts("NotAggregator", lambda: mk.finalize_round(task_id, 1, "bafym", [1]))
    reverts("ContributionsLengthMismatch", lambda: aggregator.finalize_round(task_id, 1, "bafym", [1, 1]))
    reverts("WrongRound", lambda: aggregator.finalize_round(task_id, 2, "bafym", [1]))
    reverts("EmptyCid", lambda: aggregator.finalize_round(task_id, 1, "", [1]))
    reverts("WrongStatus", lambda: a.withdraw(task_id))
    reverts("WrongStatus", lambda: mk.refund(task_id))
    aggregator.finalize_round(task_id, 1, "bafym", [1])
    reverts("WrongStatus", lambda: aggregator.finalize_round(task_id, 1, "bafym", [1]))
    reverts("NotParticipant", lambda: as_account(mk, session_for, STRANGER).withdraw(task_id))
    a.withdraw(task_id)
    reverts("AlreadyWithdrawn", lambda: a.withdraw(task_id))
    reverts("NotTaskOwner", lambda: a.refund(task_id))
    mk.refund(task_id)
    reverts("AlreadyRefunded", lambda: mk.refund(task_id))
    assert mk.session.w3.eth.get_balance(mk.address) == 0
