"""The aggregator daemon as a separate process, SIGKILLed mid-round and restarted: each round posts once. An IPFS
outage mid-round defers the round instead of refusing the submissions it could not fetch, and a following data
owner tries its round again instead of skipping it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from protocol_support.market import AGGREGATOR, build_market
from protocol_support.outage import silent_node
from protocol_support.waiting import following, wait_for

from aggregator.round import RoundAggregator
from client.commands.aggregate import CliDaemon
from marketplace.chain.events import RoundFinalized, RoundSettled
from marketplace.chain.marketplace_contract import MarketplaceContract, RoundStatus, TaskStatus
from marketplace.ipfs import IpfsClient
from marketplace.ipfs.client import IpfsUnavailableError
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_daemon_killed_mid_round_resumes_and_posts_once(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil, ipfs_node, accounts, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="groth16", dispute_window=2)
    task_id = market.task_id
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "FEDMARKET_RPC_URL": anvil.rpc_url,
        "FEDMARKET_IPFS_API": ipfs_node.api_url,
        "FEDMARKET_MARKETPLACE": marketplace.address,
        "FEDMARKET_AGGREGATOR_KEY": accounts[AGGREGATOR].key.hex(),
        "FEDMARKET_X25519_KEY": market.aggregator_private.hex(),
    }
    command = [sys.executable, "-m", "aggregator.daemon", "--state-dir", str(tmp_path), "--task", str(task_id),
               "--poll", "0.3", "--until-done"]  # fmt: skip

    market.submit_all(1)
    for stage in ("fetched", "proving"):  # die after fetching, then again while the proof is being built
        stalled = subprocess.Popen(command, env={**env, "FEDMARKET_DAEMON_STALL": stage}, cwd=ROOT)
        try:
            marker = tmp_path / f"stalled-{stage}"
            wait_for(lambda m=marker, p=stalled: m.exists() or p.poll() is not None, 240, stage)
            assert stalled.poll() is None, "the daemon exited instead of stalling"
        finally:
            stalled.send_signal(signal.SIGKILL)
            stalled.wait()
        marker.unlink()
        assert marketplace.get_task(task_id).current_round == 1  # nothing was posted

    daemon = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        for round_ in (2, 3):
            wait_for(lambda r=round_: marketplace.get_task(task_id).current_round == r, 240, f"round {round_ - 1}")
            market.submit_all(round_)
        # a local chain mines only on transactions: keep its clock moving so the dispute windows can close
        deadline = time.monotonic() + 300
        while daemon.poll() is None and time.monotonic() < deadline:
            marketplace.session.w3.provider.make_request("evm_increaseTime", [1])  # type: ignore[arg-type]
            marketplace.session.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            time.sleep(0.5)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
    assert daemon.returncode == 0

    info = marketplace.get_task(task_id)
    assert info.status is TaskStatus.FINISHED and info.unsettled_rounds == 0
    finalized = [e.round for e in marketplace.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    settled = [e.round for e in marketplace.events("RoundSettled", taskId=task_id) if isinstance(e, RoundSettled)]
    assert finalized == [1, 2, 3] and settled == [1, 2, 3]
    progress = (tmp_path / f"task-{task_id}.json").read_text()
    assert '"restarts": 2' in progress


def test_an_ipfs_outage_mid_round_defers_the_round_and_refuses_nobody(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=1)
    task_id = market.task_id
    market.submit_all(1)
    aggregator = RoundAggregator(marketplace.with_session(session_for(AGGREGATOR)), TaskFiles(ipfs),
                                 market.aggregator_private)  # fmt: skip
    aggregator.task(task_id)  # spec and validation set fetched while the node works
    events: list[dict[str, Any]] = []
    daemon = CliDaemon(aggregator, tmp_path, [task_id], 0.2, events.append)  # the CLI's daemon: it reports events
    with silent_node() as stalled:  # the node now accepts connections and never answers
        aggregator.files = TaskFiles(stalled)
        assert daemon.step() is False
        assert daemon.step() is False  # backing off: no second attempt within the delay
        with pytest.raises(IpfsUnavailableError):  # an update it could not fetch is not judged
            aggregator.collect(task_id, 1)
    [(task, round_, reason)] = daemon.log.deferred
    assert (task, round_) == (task_id, 1) and "did not answer" in reason
    assert marketplace.get_round(task_id, 1).status is RoundStatus.OPEN and not daemon.log.finalized

    aggregator.files = TaskFiles(ipfs)  # the node is back
    wait_for(lambda: daemon.step(), 30, "the deferred round")
    assert daemon.log.finalized == [(task_id, 1)] and len(daemon.log.deferred) == 1
    assert marketplace.get_round(task_id, 1).status is RoundStatus.SETTLED
    [posted] = [e for e in marketplace.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    assert len(posted.weights) == len(market.data_owners) and all(w > 0 for w in posted.weights)  # nobody refused
    assert daemon.progress(task_id).data["rounds"]["1"]["rejections"] == []
    reported = [(e["event"], e.get("reason", e.get("rejections"))) for e in events if e["event"] != "aggregating"]
    assert reported[:2] == [("deferred", reason), ("finalized", [])]
    assert events[1]["retry_in_seconds"] == 0.2  # the first delay is the poll interval


def test_a_following_data_owner_tries_a_round_again_after_an_ipfs_outage(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient  # type: ignore[no-untyped-def]
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", attacker=None, rounds=1)
    member = market.data_owners[0]
    with silent_node() as stalled:  # its node accepts connections and never answers
        member.files = TaskFiles(stalled)
        with following(member, market.task_id, poll_seconds=0.1) as (events, _):
            try:
                wait_for(lambda: any(e.kind == "retrying" for e in events), 30, "a retry")
            finally:
                member.files = TaskFiles(ipfs)  # the node is back
            wait_for(lambda: any(e.kind == "submitted" for e in events), 60, "the submission")
    kinds = [e.kind for e in events]
    assert "error" not in kinds and kinds.count("submitted") == 1 and set(kinds) <= {"retrying", "submitted"}
    assert "did not answer" in next(e.detail for e in events if e.kind == "retrying")
    index = marketplace.get_participant(market.task_id, member.address).index
    assert index in marketplace.submissions(market.task_id, 1)  # the round was not lost
