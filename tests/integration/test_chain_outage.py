"""A chain that stops answering, on real Anvil + IPFS: every role reports it as the chain's unavailability (one clear
line, never a `requests` traceback); the aggregator daemon and a following data owner wait and try again instead of
exiting or giving up the round, and a transaction the chain received before it went away is found, not repeated."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from protocol_support.market import AGGREGATOR, FIRST_DATA_OWNER, build_market
from protocol_support.outage import flaky_contract, link_of, mine_pending, mining_on_demand
from protocol_support.waiting import following, wait_for
from typer.testing import CliRunner

from aggregator.round import RoundAggregator
from client.cli import app
from client.commands.aggregate import CliDaemon
from client.training_cli import follow_task
from marketplace.chain.anvil import LocalAnvil
from marketplace.chain.events import RoundFinalized
from marketplace.chain.marketplace_contract import MarketplaceContract, RoundStatus
from marketplace.chain.session import ChainUnavailableError
from marketplace.errors import OutageTooLongError
from marketplace.ipfs import IpfsClient
from marketplace.net import free_loopback_port
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration


def test_a_chain_that_stops_answering_is_reported_as_unavailable(
    marketplace: MarketplaceContract, anvil: LocalAnvil, accounts  # type: ignore[no-untyped-def]
) -> None:
    dead = f"http://127.0.0.1:{free_loopback_port()}"
    result = CliRunner().invoke(app, ["--rpc-url", dead, "--marketplace", marketplace.address, "task", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # one line, no traceback
    assert f"cannot reach the chain at {dead}" in result.output
    audit = CliRunner().invoke(app, ["--rpc-url", dead, "--marketplace", marketplace.address, "--json", "audit", "1"])
    assert audit.exit_code == 2 and json.loads(audit.output)["error"].startswith("audit incomplete, nothing judged")

    contract = flaky_contract(anvil.rpc_url, accounts[0], marketplace.address)
    assert contract.task_count() == 0
    for silent, cause in ((False, "ConnectionError"), (True, "ReadTimeout")):
        link_of(contract).cut(silent=silent)
        with pytest.raises(ChainUnavailableError, match=rf"did not answer eth_\w+ \({cause}\)"):
            contract.task_count()
        link_of(contract).restore()
        assert contract.task_count() == 0  # the same connection works again

    # a transaction the chain took just before it went away: the error names it, so it can be found, not resent
    link_of(contract).restore(cut_after="eth_sendRawTransaction")
    with pytest.raises(ChainUnavailableError, match=r"deployment: transaction 0x[0-9a-f]{64} was sent, but") as lost:
        MarketplaceContract.deploy(contract.session)
    link_of(contract).restore()
    tx_hash = re.search(r"0x[0-9a-f]{64}", str(lost.value)).group(0)  # type: ignore[union-attr]
    assert "before sending it again" in str(lost.value)
    assert contract.session.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1  # mined all along


def test_the_daemon_waits_out_a_chain_outage_and_never_finalizes_twice(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil: LocalAnvil, accounts, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=1)
    task_id = market.task_id
    market.submit_all(1)
    contract = flaky_contract(anvil.rpc_url, accounts[AGGREGATOR], marketplace.address)
    link = link_of(contract)
    events: list[dict[str, Any]] = []
    daemon = CliDaemon(RoundAggregator(contract, TaskFiles(ipfs), market.aggregator_private), tmp_path, [task_id],
                       0.2, events.append)  # fmt: skip

    link.cut()  # down before the pass starts
    assert daemon.step() is False and daemon.step() is False  # the second is within the wait: no request
    time.sleep(0.25)
    assert daemon.step() is False  # still down: the wait doubles
    assert [e["retry_in_seconds"] for e in events] == [0.2, 0.4]
    assert all(e["event"] == "chain_unavailable" and "did not answer" in e["reason"] for e in events)

    # back, until the chain has taken the finalization; its receipt never arrives
    link.restore(cut_after="eth_sendRawTransaction")
    wait_for(lambda: not daemon.step() and len(daemon.log.chain_outages) == 3, 30, "the outage after sending")
    assert marketplace.get_round(task_id, 1).status is RoundStatus.FINALIZED  # the chain has it, the daemon can't tell
    assert "eth_getTransactionReceipt" in daemon.log.chain_outages[-1]
    assert not daemon.log.finalized

    link.restore()
    wait_for(lambda: daemon.step(), 30, "the settled task")
    finalized = [e for e in marketplace.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    assert len(finalized) == 1 and all(w > 0 for w in finalized[0].weights)  # posted once, nobody refused
    assert marketplace.get_round(task_id, 1).status is RoundStatus.SETTLED
    assert [e["event"] for e in events] == ["chain_unavailable"] * 2 + ["aggregating", "chain_unavailable",
                                                                        "finalized", "settled"]  # fmt: skip
    assert events[-2]["found_on_chain"] and events[-2]["model_cid"] == finalized[0].model_cid  # the log lost nothing
    assert daemon.log.finalized == [(task_id, 1)] and daemon.progress(task_id).stage(1) == "settled"


def test_a_following_data_owner_tries_again_after_a_chain_outage_without_submitting_twice(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil: LocalAnvil, accounts  # type: ignore[no-untyped-def]
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=1)
    member = market.data_owners[0]
    member.contract = flaky_contract(anvil.rpc_url, accounts[FIRST_DATA_OWNER], marketplace.address)
    link = link_of(member.contract)
    link.cut(silent=True)  # its chain node hangs
    with following(member, market.task_id, poll_seconds=0.5) as (events, _):  # waits 1 s, then 2 s
        wait_for(lambda: any(e.kind == "retrying" for e in events), 30, "a retry")
        link.restore(cut_after="eth_sendRawTransaction")  # back until the submission is sent
        wait_for(lambda: sum(e.kind == "retrying" for e in events) == 2, 60, "the retry after sending")
        link.restore()
        wait_for(lambda: any(e.kind == "skipped" for e in events), 30, "the next look at the round")
    assert [(e.kind, e.round) for e in events] == [("retrying", 0), ("retrying", 1), ("skipped", 1)]
    assert "ReadTimeout" in events[0].detail and "eth_getTransactionReceipt" in events[1].detail
    assert events[2].detail == "already submitted"  # the update sent before the outage is on chain, and only once
    index = marketplace.get_participant(market.task_id, member.address).index
    assert index in marketplace.submissions(market.task_id, 1)


def test_told_to_give_up_the_daemon_and_a_data_owner_stop_after_that_long_having_judged_nothing(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil: LocalAnvil, accounts, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=1)
    contract = flaky_contract(anvil.rpc_url, accounts[AGGREGATOR], marketplace.address)
    daemon = CliDaemon(RoundAggregator(contract, TaskFiles(ipfs), market.aggregator_private), tmp_path,
                       [market.task_id], 0.2, lambda _e: None, give_up_after=1.0)  # fmt: skip
    link_of(contract).cut()
    started = time.monotonic()
    with pytest.raises(OutageTooLongError, match=r"gave up after 1 s without an answer: .*did not answer"):
        while time.monotonic() - started < 30:
            daemon.step()
            time.sleep(0.05)
    assert 1.0 <= time.monotonic() - started < 3  # tries at 0, 0.2, 0.6 s, then the one past 1 s gives up
    assert len(daemon.log.chain_outages) == 3 and not daemon.log.finalized

    member = market.data_owners[0]
    member.contract = flaky_contract(anvil.rpc_url, accounts[FIRST_DATA_OWNER], marketplace.address)
    link_of(member.contract).cut()
    started = time.monotonic()
    with pytest.raises(OutageTooLongError):
        follow_task(member, market.task_id, poll_seconds=0.2, give_up_after=1.0)
    assert time.monotonic() - started < 3
    assert marketplace.get_round(market.task_id, 1).submitted == 0  # nothing sent, nothing judged


def test_a_finalization_still_pending_after_an_outage_is_not_posted_twice(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil: LocalAnvil, accounts, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """On a chain with block times the lost finalization may still be pending when the chain answers again: the
    round looks open, the daemon posts again, and the chain mines both. The second one reverts; that is the round
    being done, not a failure of the daemon."""
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=2)
    task_id = market.task_id
    market.submit_all(1)
    contract = flaky_contract(anvil.rpc_url, accounts[AGGREGATOR], marketplace.address)
    events: list[dict[str, Any]] = []
    daemon = CliDaemon(RoundAggregator(contract, TaskFiles(ipfs), market.aggregator_private), tmp_path, [task_id],
                       0.2, events.append)  # fmt: skip
    rpc = marketplace.session.w3.provider
    with mining_on_demand(rpc) as pending:
        link_of(contract).restore(cut_after="eth_sendRawTransaction")
        assert daemon.step() is False  # the finalization is sent, its receipt lost
        link_of(contract).restore()
        assert pending() == 1 and marketplace.get_round(task_id, 1).status is RoundStatus.OPEN
        time.sleep(0.25)  # past the daemon's wait
        failures: list[BaseException] = []
        second = threading.Thread(target=lambda: _record_failure(daemon.step, failures))
        second.start()
        wait_for(lambda: pending() == 2, 60, "the second finalization")
        mine_pending(rpc)  # both in one block: the first wins
        second.join(timeout=60)
    assert not failures and not second.is_alive()
    finalized = [e for e in marketplace.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    assert [e.round for e in finalized] == [1] and marketplace.get_round(task_id, 1).status is RoundStatus.SETTLED
    assert [e["event"] for e in events] == ["aggregating", "chain_unavailable", "aggregating", "skipped", "finalized",
                                            "settled"]  # fmt: skip
    assert events[4]["found_on_chain"] and daemon.log.finalized == [(task_id, 1)]


def _record_failure(step, failures: list[BaseException]) -> None:  # type: ignore[no-untyped-def]
    try:
        step()
    except BaseException as exc:  # reported by the test thread
        failures.append(exc)


def test_a_submission_still_pending_after_an_outage_is_not_an_error(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil: LocalAnvil, accounts  # type: ignore[no-untyped-def]
) -> None:
    """The data owner's side of the same race: its second submission reverts AlreadySubmitted, and it follows on."""
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=1)
    member = market.data_owners[0]
    member.contract = flaky_contract(anvil.rpc_url, accounts[FIRST_DATA_OWNER], marketplace.address,
                                     cut_after="eth_sendRawTransaction")  # fmt: skip
    rpc = marketplace.session.w3.provider
    with mining_on_demand(rpc) as pending, following(member, market.task_id, poll_seconds=0.2) as (events, follower):
        wait_for(lambda: any(e.kind == "retrying" for e in events), 60, "the lost receipt")
        link_of(member.contract).restore()
        wait_for(lambda: pending() == 2, 60, "the second submission")
        mine_pending(rpc)
        wait_for(lambda: len(events) == 2, 60, "the refused repeat")
    assert not follower.is_alive() and [(e.kind, e.round) for e in events] == [("retrying", 1), ("skipped", 1)]
    assert events[1].detail == "AlreadySubmitted"
    index = marketplace.get_participant(market.task_id, member.address).index
    assert list(marketplace.submissions(market.task_id, 1)).count(index) == 1
