"""The Marketplace contract on a real Anvil chain: the money flow of every path and every revert, decoded."""

from __future__ import annotations

from dataclasses import replace

import pytest
from contracts.harness import (
    AGGREGATION,
    ARBITRATION,
    BOND,
    CHALLENGE_BOND,
    DISPUTE,
    G1,
    G1_DOUBLE,
    JOIN,
    OFF_CURVE,
    REWARD,
    SEEN_ERRORS,
    STAKE,
    SUBMISSION,
    ZERO,
    Harness,
    reverts,
)
from eth_account.signers.local import LocalAccount
from web3 import Web3

from marketplace.chain.anvil import advance_time
from marketplace.chain.artifacts import load_artifact
from marketplace.chain.erc20 import Erc20
from marketplace.chain.events import (
    DisputeLapsed,
    DisputeResolved,
    RewardCredited,
    RoundFinalized,
    RoundOpened,
    RoundSettled,
    Slashed,
    TaskCancelled,
    TaskCreated,
    TaskFinished,
    Withdrawn,
)
from marketplace.chain.marketplace_contract import (
    ETH,
    PayoutPolicy,
    RoundStatus,
    Rules,
    TaskStatus,
    submission_digest,
)
from marketplace.chain.revert import decode_revert
from marketplace.chain.session import ChainSession

pytestmark = pytest.mark.integration

SCALAR_FIELD = 21888242871839275222246405745257275088548364400416034343698204186575808495617


@pytest.fixture
def h(w3: Web3, accounts: list[LocalAccount]) -> Harness:
    return Harness.deploy(w3, accounts)


def withdraw_all(h: Harness, task_id: int, actors: list[int]) -> dict[int, int]:
    """Each actor withdraws whatever it is owed; returns the amounts (0 where nothing was owed)."""
    paid = {}
    for i in actors:
        payout, closed = h.market.payout_of(task_id, h.address(i))
        assert closed
        if payout.total == 0:
            reverts("NothingToWithdraw", lambda i=i: h.as_(i).withdraw(task_id))
            paid[i] = 0
            continue
        event = h.as_(i).withdraw(task_id).first(Withdrawn)
        assert event.amount == payout.total
        paid[i] = event.amount
    return paid


def test_full_task_with_removal_slash_and_dust_conserves_every_wei(h: Harness) -> None:
    w3, market = h.w3, h.market
    task_id = h.started()
    a, b, c = h.data_owners
    round_reward, slash = REWARD // 2, STAKE * 5_000 // 10_000

    for i in h.data_owners:
        h.submit(task_id, 1, i)
    assert market.get_round(task_id, 1).submitted == 3
    index_of_c = market.get_participant(task_id, h.address(c)).index
    digest = market.submission_digest(task_id, 1, index_of_c)
    assert digest == submission_digest(G1, 1000 + c)
    finalize = h.as_(h.aggregator).finalize_round(task_id, 1, h.report(task_id, 1, (1, 2, -5), removals=0b100))
    posted = finalize.first(RoundFinalized)
    assert posted.contributions == (1, 2, -5) and posted.removals == 0b100
    assert finalize.first(RoundOpened).round == 2
    reverts("Removed", lambda: h.submit(task_id, 2, c))

    reverts("DisputeWindowOpen", lambda: market.settle_round(task_id, 1, (1, 2, -5)))
    advance_time(w3, DISPUTE)
    reverts("ContributionsMismatch", lambda: market.settle_round(task_id, 1, (1, 2, 5)))
    settle = h.as_(h.stranger).settle_round(task_id, 1, (1, 2, -5))  # anyone may settle
    pool = round_reward + slash
    credited = pool * 1 // 3 + pool * 2 // 3
    assert settle.first(RoundSettled).pool == pool and settle.first(RoundSettled).credited == credited
    assert settle.first(Slashed).data_owner == h.address(c)
    reverts("WrongRoundStatus", lambda: market.settle_round(task_id, 1, (1, 2, -5)))

    h.submit(task_id, 2, a)
    h.submit(task_id, 2, b)  # every active data owner submitted: the aggregator need not wait
    result = h.as_(h.aggregator).finalize_round(task_id, 2, h.report(task_id, 2, (3, 0, 0)))
    assert result.first(TaskFinished).final_model_cid == "bafymodel2"
    reverts("NotClosed", lambda: h.as_(a).withdraw(task_id))
    advance_time(w3, DISPUTE)
    market.settle_round(task_id, 2, (3, 0, 0))

    info = market.get_task(task_id)
    assert info.status is TaskStatus.FINISHED and info.closed and info.slashed_mask == 0b100
    assert w3.eth.get_balance(market.address) == REWARD + 3 * STAKE + BOND == market.held(ETH)
    paid = withdraw_all(h, task_id, [a, b, c, h.owner, h.aggregator, h.stranger])
    assert paid[a] == pool * 1 // 3 + round_reward + STAKE
    assert paid[b] == pool * 2 // 3 + STAKE
    assert paid[c] == STAKE - slash
    assert paid[h.owner] == REWARD % 2 + pool - credited
    assert paid[h.aggregator] == BOND
    assert sum(paid.values()) == REWARD + 3 * STAKE + BOND
    assert w3.eth.get_balance(market.address) == 0 == market.held(ETH)
    reverts("NothingToWithdraw", lambda: h.as_(a).withdraw(task_id))


def test_last_round_removes_an_owner_with_weight_at_once(h: Harness) -> None:
    """An owner the rules remove in the last round while its update counts is slashed and unpaid there; in an
    earlier round the same removal waits for the next round, where its weight is 0."""
    task_id = h.started(rounds=2)
    a, b, c = h.data_owners
    round_reward, slash = REWARD // 2, STAKE * 5_000 // 10_000
    for i in h.data_owners:
        h.submit(task_id, 1, i)
    aggregator = h.as_(h.aggregator)
    c_weighted_and_removed = {"removals": 0b100, "weights": (1, 1, 1)}
    early = h.report(task_id, 1, (1, 1, 1), **c_weighted_and_removed)
    reverts("InvalidRemovals", lambda: aggregator.finalize_round(task_id, 1, early))
    h.finalize(task_id, 1, (1, 1, 1))
    for i in h.data_owners:
        h.submit(task_id, 2, i)
    finalize = aggregator.finalize_round(task_id, 2, h.report(task_id, 2, (1, 1, 1), **c_weighted_and_removed))
    assert finalize.first(RoundFinalized).removals == 0b100 and finalize.first(TaskFinished)
    advance_time(h.w3, DISPUTE)
    h.market.settle_round(task_id, 1, (1, 1, 1))
    settle = h.market.settle_round(task_id, 2, (1, 1, 1))
    assert settle.first(Slashed).data_owner == h.address(c)
    credits = settle.all(RewardCredited)
    assert {e.data_owner for e in credits} == {h.address(a), h.address(b)}
    pool = round_reward + slash
    assert settle.first(RoundSettled).pool == pool
    info = h.market.get_task(task_id)
    assert info.slashed_mask == info.removed_mask == 0b100
    paid = withdraw_all(h, task_id, [a, b, c, h.owner, h.aggregator])
    assert paid[c] == round_reward // 3 + STAKE - slash  # round 1's share, its stake less the slash
    assert paid[a] == paid[b] == round_reward // 3 + pool // 2 + STAKE
    assert sum(paid.values()) == REWARD + 3 * STAKE + BOND
    assert h.w3.eth.get_balance(h.market.address) == 0 == h.market.held(ETH)


def test_withdraw_moves_exact_wei(h: Harness) -> None:
    task_id = h.started(joiners=h.data_owners[:1], rounds=1, dispute_window=0, aggregator_bond=0)
    member = h.data_owners[0]
    h.submit(task_id, 1, member)
    h.finalize(task_id, 1, (1, 0, 0)[:1])
    h.market.settle_round(task_id, 1, (1,))
    before = h.w3.eth.get_balance(h.address(member))
    result = h.as_(member).withdraw(task_id)
    fee = result.tx.gas_used * result.tx.receipt["effectiveGasPrice"]
    assert h.w3.eth.get_balance(h.address(member)) == before - fee + REWARD + STAKE


def test_create_task_rejects_bad_terms(h: Harness) -> None:
    bad = {
        "reward must be positive": {"reward": 0},
        "rounds must be positive": {"rounds": 0},
        "aggregator is the zero address": {"aggregator": ZERO},
        "maxDataOwners out of range": {"max_data_owners": 257},
        "minDataOwners out of range": {"min_data_owners": 4},
        "periods must be positive": {"submission_period": 0},
        "slashBps above 10000": {"rules": Rules(slash_bps=10_001)},
        "unverified task names a verifier": {"unverified": True},
        "verifier is not a contract": {"verifier": ZERO},
        "disputes need an arbiter": {"arbiter": ZERO},
        "disputes need an arbitration period": {"arbitration_period": 0},
        "disputes need a challenge bond": {"challenge_bond": 0},
        "token is not a contract": {"token": h.address(h.stranger)},
    }
    for reason, overrides in bad.items():
        error = reverts("InvalidTerms", lambda o=overrides: h.create(**o))  # type: ignore[misc]
        assert error.error_args["reason"] == reason
    reverts("EmptyCid", lambda: h.as_(h.owner).create_task(h.terms(), "", "bafymodel0"))
    reverts("WrongValue", lambda: h.as_(h.owner).create_task(h.terms(), "bafyspec", "bafym", value=REWARD - 1))
    reverts("TaskNotFound", lambda: h.market.get_task(99))
    for call in (h.market.get_terms, h.market.get_participants):
        reverts("TaskNotFound", lambda call=call: call(99))  # type: ignore[misc]
    assert h.market.task_count() == 0


def test_unverified_task_is_flagged_and_skips_the_verifier(h: Harness) -> None:
    task_id, result = h.as_(h.owner).create_task(
        h.terms(unverified=True, verifier=ZERO, aggregator_bond=0), "bafyspec", "bafymodel0"
    )
    created = result.first(TaskCreated)
    assert created.unverified and created.terms[8] is True
    h.as_(h.data_owners[0]).join(task_id, STAKE)
    h.as_(h.owner).start_task(task_id)
    h.submit(task_id, 1, h.data_owners[0])
    report = replace(h.report(task_id, 1, (1, 0, 0)[:1]), proof=b"not a proof")
    h.as_(h.aggregator).finalize_round(task_id, 1, report)
    assert h.market.get_round(task_id, 1).status is RoundStatus.FINALIZED


def test_join_bond_and_start_rules(h: Harness) -> None:
    task_id = h.create(max_data_owners=2, min_data_owners=2)
    a, b, c = (h.as_(i) for i in h.data_owners)
    error = reverts("WrongStake", lambda: a.join(task_id, STAKE - 1))
    assert error.error_args == {"expected": STAKE, "sent": STAKE - 1}
    a.join(task_id, STAKE)
    reverts("AlreadyJoined", lambda: a.join(task_id, STAKE))
    owner = h.as_(h.owner)
    reverts("TooFewDataOwners", lambda: owner.start_task(task_id))
    b.join(task_id, STAKE)
    reverts("TaskFull", lambda: c.join(task_id, STAKE))
    reverts("NotTaskOwner", lambda: a.start_task(task_id))
    reverts("BondMissing", lambda: owner.start_task(task_id))
    reverts("NotAggregator", lambda: a.post_bond(task_id, BOND))
    aggregator = h.as_(h.aggregator)
    reverts("WrongValue", lambda: aggregator.post_bond(task_id, BOND + 1))
    aggregator.post_bond(task_id, BOND)
    reverts("BondAlreadyPosted", lambda: aggregator.post_bond(task_id, BOND))
    owner.start_task(task_id)
    reverts("WrongStatus", lambda: c.join(task_id, STAKE))
    reverts("WrongStatus", lambda: owner.start_task(task_id))
    reverts("WrongStatus", lambda: aggregator.post_bond(task_id, BOND))
    late = h.create()
    advance_time(h.w3, JOIN + 1)
    reverts("JoinClosed", lambda: a.join(late, STAKE))
    reverts("TaskNotFound", lambda: a.join(12345, STAKE))


def test_submission_rules(h: Harness) -> None:
    task_id = h.create()
    a_index = h.data_owners[0]
    a = h.as_(a_index)
    a.join(task_id, STAKE)
    reverts("WrongStatus", lambda: h.submit(task_id, 1, a_index))
    h.as_(h.aggregator).post_bond(task_id, BOND)
    h.as_(h.owner).start_task(task_id)
    reverts("NotParticipant", lambda: h.submit(task_id, 1, h.stranger))
    reverts("WrongRound", lambda: h.submit(task_id, 2, a_index))
    reverts("EmptyCid", lambda: a.submit_update(task_id, 1, "", b"\x01" * 32, G1, 1))
    reverts("InvalidCommitment", lambda: h.submit(task_id, 1, a_index, point=OFF_CURVE))
    reverts("InvalidCommitment", lambda: h.submit(task_id, 1, a_index, poseidon=SCALAR_FIELD))
    h.submit(task_id, 1, a_index, point=G1_DOUBLE)
    reverts("AlreadySubmitted", lambda: h.submit(task_id, 1, a_index))
    late = h.started(joiners=h.data_owners[1:])
    advance_time(h.w3, SUBMISSION + 1)
    reverts("SubmissionClosed", lambda: h.submit(late, 1, h.data_owners[1]))


def test_finalize_rules(h: Harness) -> None:
    task_id = h.started(rounds=2)  # round 1 is not the last: a removal there must name an owner with weight 0
    a, b, _ = h.data_owners
    h.submit(task_id, 1, a)
    h.submit(task_id, 1, b)
    aggregator = h.as_(h.aggregator)
    good = h.report(task_id, 1, (1, 1, 0))
    reverts("NotAggregator", lambda: h.as_(h.owner).finalize_round(task_id, 1, good))
    reverts("RoundStillOpen", lambda: aggregator.finalize_round(task_id, 1, good))
    advance_time(h.w3, SUBMISSION + 1)
    reverts("WrongRound", lambda: aggregator.finalize_round(task_id, 2, good))
    reverts("EmptyCid", lambda: aggregator.finalize_round(task_id, 1, replace(good, model_cid="")))
    for name in ("commitments", "poseidons", "weights", "reputations", "contributions"):
        short = replace(good, **{name: getattr(good, name)[:2]})
        reverts("LengthMismatch", lambda short=short: aggregator.finalize_round(task_id, 1, short))  # type: ignore[misc]
    reverts("InvalidRemovals", lambda: aggregator.finalize_round(task_id, 1, replace(good, removals=0b1000)))
    reverts("InvalidRemovals", lambda: aggregator.finalize_round(task_id, 1, replace(good, removals=0b1)))
    wrong_point = replace(good, commitments=(G1_DOUBLE, *good.commitments[1:]))
    reverts("SubmissionMismatch", lambda: aggregator.finalize_round(task_id, 1, wrong_point))
    wrong_poseidon = replace(good, poseidons=(7, *good.poseidons[1:]))
    reverts("SubmissionMismatch", lambda: aggregator.finalize_round(task_id, 1, wrong_poseidon))
    ghost = replace(good, commitments=(*good.commitments[:2], G1))
    reverts("SubmissionMismatch", lambda: aggregator.finalize_round(task_id, 1, ghost))
    reverts("NotSubmitted", lambda: aggregator.finalize_round(task_id, 1, h.report(task_id, 1, (1, 1, 1))))
    weighted_ghost = h.report(task_id, 1, (1, 1, 0), weights=(1, 1, 1))
    reverts("NotSubmitted", lambda: aggregator.finalize_round(task_id, 1, weighted_ghost))
    reverts("ProofRejected", lambda: aggregator.finalize_round(task_id, 1, replace(good, proof=b"\x00" * 32)))
    reverts("ProofRejected", lambda: aggregator.finalize_round(task_id, 1, replace(good, model_commitment=OFF_CURVE)))
    advance_time(h.w3, AGGREGATION)
    reverts("AggregationClosed", lambda: aggregator.finalize_round(task_id, 1, good))


def test_dispute_rules_and_rejected_bond_joins_the_pool(h: Harness) -> None:
    task_id = h.started(rounds=1)
    a, b, _ = h.data_owners
    h.submit(task_id, 1, a)
    h.submit(task_id, 1, b)
    challenger = h.as_(h.stranger)
    reverts("WrongRoundStatus", lambda: challenger.challenge_round(task_id, 1, "bafyevidence", CHALLENGE_BOND))
    advance_time(h.w3, SUBMISSION + 1)
    h.finalize(task_id, 1, (1, 3, 0))
    reverts("WrongValue", lambda: challenger.challenge_round(task_id, 1, "bafyevidence", CHALLENGE_BOND - 1))
    reverts("NoDispute", lambda: h.as_(h.arbiter).resolve_dispute(task_id, 1, False))
    challenger.challenge_round(task_id, 1, "bafyevidence", CHALLENGE_BOND)
    reverts("DisputeAlreadyOpen", lambda: h.as_(a).challenge_round(task_id, 1, "bafyx", CHALLENGE_BOND))
    reverts("NotArbiter", lambda: h.as_(h.owner).resolve_dispute(task_id, 1, True))
    advance_time(h.w3, DISPUTE)
    reverts("DisputeOpen", lambda: h.market.settle_round(task_id, 1, (1, 3, 0)))
    reverts("DisputeWindowClosed", lambda: h.as_(a).challenge_round(task_id, 1, "bafyx", CHALLENGE_BOND))
    resolved = h.as_(h.arbiter).resolve_dispute(task_id, 1, False).first(DisputeResolved)
    assert not resolved.upheld and resolved.to_pool == CHALLENGE_BOND
    settled = h.market.settle_round(task_id, 1, (1, 3, 0)).first(RoundSettled)
    pool = REWARD + CHALLENGE_BOND  # one round: the whole reward, plus the rejected bond
    assert settled.pool == pool
    paid = withdraw_all(h, task_id, [a, b, h.data_owners[2], h.stranger, h.owner, h.aggregator])
    assert paid[a] == pool // 4 + STAKE and paid[b] == pool * 3 // 4 + STAKE and paid[h.stranger] == 0
    assert paid[h.owner] == pool - pool // 4 - pool * 3 // 4 and paid[h.aggregator] == BOND
    assert h.w3.eth.get_balance(h.market.address) == 0


def test_upheld_dispute_voids_the_round_undoes_removals_and_pays_the_challenger(h: Harness) -> None:
    task_id = h.started(rounds=2)
    a, b, c = h.data_owners
    for i in h.data_owners:
        h.submit(task_id, 1, i)
    h.finalize(task_id, 1, (5, 5, 0), removals=0b100)
    assert h.market.get_task(task_id).removed_mask == 0b100
    h.as_(h.stranger).challenge_round(task_id, 1, "bafyevidence", CHALLENGE_BOND)
    resolved = h.as_(h.arbiter).resolve_dispute(task_id, 1, True)
    assert resolved.first(DisputeResolved).challenger_credit == CHALLENGE_BOND + BOND // 2
    assert resolved.first(RoundSettled).voided
    reverts("NoDispute", lambda: h.as_(h.arbiter).resolve_dispute(task_id, 1, True))
    assert h.market.get_task(task_id).removed_mask == 0  # c may submit again
    h.submit(task_id, 2, c)
    # the challenger's credit is payable at once, before the task is over
    assert h.as_(h.stranger).withdraw(task_id).first(Withdrawn).amount == CHALLENGE_BOND + BOND // 2
    reverts("NotClosed", lambda: h.as_(h.stranger).withdraw(task_id))
    advance_time(h.w3, SUBMISSION + 1)
    h.finalize(task_id, 2, (0, 0, 1))
    advance_time(h.w3, DISPUTE)
    h.market.settle_round(task_id, 2, (0, 0, 1))
    paid = withdraw_all(h, task_id, [a, b, c, h.owner, h.aggregator])
    assert paid == {
        a: STAKE, b: STAKE, c: STAKE + REWARD // 2, h.owner: REWARD // 2 + REWARD % 2, h.aggregator: BOND - BOND // 2
    }


def test_lapsed_dispute_refunds_the_challenger_and_the_round_stands(h: Harness) -> None:
    task_id = h.started(rounds=1)
    a = h.data_owners[0]
    h.submit(task_id, 1, a)
    advance_time(h.w3, SUBMISSION + 1)
    h.finalize(task_id, 1, (1, 0, 0))
    h.as_(h.stranger).challenge_round(task_id, 1, "bafyevidence", CHALLENGE_BOND)
    advance_time(h.w3, ARBITRATION + 1)
    reverts("DisputeExpired", lambda: h.as_(h.arbiter).resolve_dispute(task_id, 1, True))
    result = h.market.settle_round(task_id, 1, (1, 0, 0))
    assert result.first(DisputeLapsed).refunded == CHALLENGE_BOND
    assert h.as_(h.stranger).withdraw(task_id).first(Withdrawn).amount == CHALLENGE_BOND
    paid = withdraw_all(h, task_id, [a, h.owner, h.aggregator])
    assert paid[a] == REWARD + STAKE


def test_disputes_disabled_with_a_zero_window(h: Harness) -> None:
    task_id = h.started(rounds=1, dispute_window=0, arbiter=ZERO, arbitration_period=0)
    h.submit(task_id, 1, h.data_owners[0])
    advance_time(h.w3, SUBMISSION + 1)
    h.finalize(task_id, 1, (1, 0, 0))
    reverts("DisputesDisabled", lambda: h.as_(h.stranger).challenge_round(task_id, 1, "bafy", CHALLENGE_BOND))
    h.market.settle_round(task_id, 1, (1, 0, 0))  # settles in the same second


def test_cancel_before_start_returns_every_deposit(h: Harness) -> None:
    task_id = h.create()
    a = h.data_owners[0]
    h.as_(a).join(task_id, STAKE)
    h.as_(h.aggregator).post_bond(task_id, BOND)
    reverts("CannotCancelYet", lambda: h.as_(h.stranger).cancel_task(task_id))
    reverts("NotClosed", lambda: h.as_(a).withdraw(task_id))
    h.as_(h.owner).cancel_task(task_id)
    reverts("WrongStatus", lambda: h.as_(h.owner).cancel_task(task_id))
    paid = withdraw_all(h, task_id, [a, h.owner, h.aggregator])
    assert paid == {a: STAKE, h.owner: REWARD, h.aggregator: BOND}
    other = h.create()
    advance_time(h.w3, JOIN + 1)
    assert h.as_(h.stranger).cancel_task(other).first(TaskCancelled).to_owner == REWARD


def test_missed_aggregation_lets_anyone_cancel(h: Harness) -> None:
    task_id = h.started(rounds=3)
    a, b, c = h.data_owners
    for i in h.data_owners:
        h.submit(task_id, 1, i)
    h.finalize(task_id, 1, (1, 1, 0), removals=0b100)
    h.submit(task_id, 2, a)  # round 2: b misses it; the aggregator then disappears
    reverts("CannotCancelYet", lambda: h.as_(h.stranger).cancel_task(task_id))
    advance_time(h.w3, SUBMISSION + AGGREGATION + 1)
    cancelled = h.as_(h.stranger).cancel_task(task_id).first(TaskCancelled)
    assert cancelled.aggregator_fault and cancelled.round == 2 and cancelled.to_owner == 2 * (REWARD // 3)
    reverts("NotClosed", lambda: h.as_(a).withdraw(task_id))  # round 1 is still in its window
    h.market.settle_round(task_id, 1, (1, 1, 0))
    slash = STAKE // 2
    pool = REWARD // 3 + slash
    paid = withdraw_all(h, task_id, [a, b, c, h.owner, h.aggregator])
    assert paid[a] == paid[b] == pool // 2 + STAKE + BOND // 2
    assert paid[c] == STAKE - slash and paid[h.aggregator] == 0
    assert paid[h.owner] == REWARD % 3 + 2 * (REWARD // 3) + pool - 2 * (pool // 2) + BOND % 2
    assert h.w3.eth.get_balance(h.market.address) == 0
    reverts("WrongStatus", lambda: h.as_(h.stranger).cancel_task(task_id))


def test_equal_payout_policy_and_empty_round(h: Harness) -> None:
    task_id = h.started(rounds=2, rules=Rules(payout_policy=PayoutPolicy.EQUAL), aggregator_bond=0)
    a, b, c = h.data_owners
    for i in h.data_owners:
        h.submit(task_id, 1, i)
    h.finalize(task_id, 1, (1, 100, -3))
    advance_time(h.w3, SUBMISSION + 1)  # nobody submits in round 2
    h.finalize(task_id, 2, (0, 0, 0))
    advance_time(h.w3, DISPUTE)
    h.market.settle_round(task_id, 1, (1, 100, -3))
    assert h.market.settle_round(task_id, 2, (0, 0, 0)).first(RoundSettled).to_owner == REWARD // 2
    paid = withdraw_all(h, task_id, [a, b, c, h.owner])
    assert paid[a] == paid[b] == REWARD // 4 + STAKE and paid[c] == STAKE


def test_erc20_task_full_cycle(h: Harness) -> None:
    token = Erc20.deploy(h.session(h.owner))
    h.fund(token, h.owner, REWARD)
    terms = h.terms(token=token.address, rounds=1)
    task_id = h.create(terms)
    for i in (*h.data_owners, h.aggregator):
        h.fund(token, i, STAKE + BOND)
    reverts("WrongValue", lambda: h.as_(h.data_owners[0]).join(task_id, STAKE))  # ETH sent to a token task
    for i in h.data_owners:
        h.as_(i).join(task_id, 0)
    h.as_(h.aggregator).post_bond(task_id, 0)
    h.as_(h.owner).start_task(task_id)
    for i in h.data_owners:
        h.submit(task_id, 1, i)
    h.finalize(task_id, 1, (1, 1, 1))
    assert token.balance_of(h.market.address) == REWARD + 3 * STAKE + BOND == h.market.held(token.address)
    advance_time(h.w3, DISPUTE)
    h.market.settle_round(task_id, 1, (1, 1, 1))
    paid = withdraw_all(h, task_id, [*h.data_owners, h.owner, h.aggregator])
    assert paid[h.data_owners[0]] == REWARD // 3 + STAKE and paid[h.owner] == REWARD % 3
    assert token.balance_of(h.market.address) == 0 == h.market.held(token.address)
    assert h.w3.eth.get_balance(h.market.address) == 0


def test_false_returning_token_is_refused(h: Harness) -> None:
    token = Erc20.deploy(h.session(h.owner), "FalseReturnToken")
    h.fund(token, h.owner, 2 * REWARD)
    failing = token.contract.functions.setFailing(True)
    h.session(h.owner).transact(failing)
    terms = h.terms(token=token.address, rounds=1, aggregator_bond=0)
    error = reverts("SafeERC20FailedOperation", lambda: h.create(terms))
    assert error.error_args["token"] == token.address
    h.session(h.owner).transact(token.contract.functions.setFailing(False))
    task_id = h.create(terms)
    a = h.data_owners[0]
    h.fund(token, a, STAKE)
    h.as_(a).join(task_id, 0)
    h.as_(h.owner).start_task(task_id)
    h.submit(task_id, 1, a)
    advance_time(h.w3, SUBMISSION + 1)
    h.finalize(task_id, 1, (1, 0, 0)[:1])
    advance_time(h.w3, DISPUTE)
    h.market.settle_round(task_id, 1, (1,))
    h.session(h.owner).transact(token.contract.functions.setFailing(True))
    reverts("SafeERC20FailedOperation", lambda: h.as_(a).withdraw(task_id))  # nothing moves, nothing is lost
    assert h.market.payout_of(task_id, h.address(a))[0].total == REWARD + STAKE
    h.session(h.owner).transact(token.contract.functions.setFailing(False))
    assert h.as_(a).withdraw(task_id).first(Withdrawn).amount == REWARD + STAKE


def test_fee_on_transfer_token_is_rejected_clearly(h: Harness) -> None:
    token = Erc20.deploy(h.session(h.owner), "FeeOnTransferToken")
    h.fund(token, h.owner, REWARD)
    error = reverts("FeeOnTransferToken", lambda: h.create(token=token.address))
    assert error.error_args == {"token": token.address, "expected": REWARD, "received": REWARD - REWARD // 100}
    assert h.market.task_count() == 0


def test_reentrant_receiver_gets_paid_once(h: Harness) -> None:
    artifact = load_artifact("ReentrantDataOwner")
    address, _ = h.session(h.stranger).deploy(artifact["abi"], artifact["bytecode"], h.market.address)
    attacker = h.w3.eth.contract(address=address, abi=artifact["abi"])
    session: ChainSession = h.session(h.stranger)
    task_id = h.create(rounds=1, aggregator_bond=0)
    session.transact(attacker.functions.join(task_id), value=STAKE)
    h.as_(h.owner).start_task(task_id)
    session.transact(attacker.functions.submit(task_id, 1, "bafyattacker"))
    advance_time(h.w3, SUBMISSION + 1)
    h.finalize(task_id, 1, (1,))
    advance_time(h.w3, DISPUTE)
    h.market.settle_round(task_id, 1, (1,))
    session.transact(attacker.functions.setRefuse(True))
    raw = reverts("Unknown", lambda: session.transact(attacker.functions.withdraw(task_id)))  # attacker's ABI
    refused = decode_revert(bytes.fromhex(str(raw.error_args["data"])[2:]), h.market.contract.abi)
    assert refused.error_name == "FailedCall"
    SEEN_ERRORS.add(refused.error_name)
    session.transact(attacker.functions.setRefuse(False))
    session.transact(attacker.functions.withdraw(task_id))
    assert attacker.functions.attempts().call() == 1 and not attacker.functions.reentered().call()
    inner = decode_revert(bytes(attacker.functions.lastError().call()), h.market.contract.abi)
    assert inner.error_name == "ReentrancyGuardReentrantCall"
    SEEN_ERRORS.add(inner.error_name)
    assert h.w3.eth.get_balance(address) == REWARD + STAKE
    assert h.w3.eth.get_balance(h.market.address) == h.market.payout_of(task_id, h.address(h.owner))[0].total


def test_every_custom_error_is_exercised(request: pytest.FixtureRequest) -> None:
    module_tests = [item for item in request.session.items if item.module is request.module]
    if len(module_tests) != sum(1 for name in dir(request.module) if name.startswith("test_")):
        pytest.skip("only part of the module ran")
    abi = load_artifact("Marketplace")["abi"]
    declared = {entry["name"] for entry in abi if entry["type"] == "error"}
    # InsufficientBalance (OpenZeppelin Address) cannot happen: the contract never pays more than it holds
    assert declared - SEEN_ERRORS == {"InsufficientBalance"}, sorted(declared - SEEN_ERRORS)
