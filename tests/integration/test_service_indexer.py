"""The indexer: idempotent re-runs, resuming after a restart, holding back unfinal blocks, rolling back a reorg."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from web3 import Web3

from marketplace.chain.anvil import LocalAnvil, dev_accounts
from marketplace.chain.marketplace_contract import ETH, MarketplaceContract, Rules, TaskTerms
from marketplace.chain.session import ChainSession, connect
from marketplace.service.db import EventRow, MemberRow, TaskRow, open_database
from marketplace.service.indexer import Indexer

pytestmark = pytest.mark.integration
STAKE = 10**16


def _terms(aggregator: str) -> TaskTerms:
    return TaskTerms(
        token=ETH, reward=10**17, aggregator=aggregator, stake=STAKE, arbiter=aggregator, aggregator_bond=0,
        verifier="0x" + "00" * 20, challenge_bond=0, unverified=True, rounds=1, min_data_owners=1,
        max_data_owners=8, join_period=3600, submission_period=600, aggregation_period=600, dispute_window=0,
        arbitration_period=0, rules=Rules(),
    )  # fmt: skip


@pytest.fixture
def chain() -> tuple[Web3, list[ChainSession], MarketplaceContract, int]:
    """A private Anvil (reorgs are simulated with snapshots, which must not touch the shared chain)."""
    node = LocalAnvil(accounts=8).start()
    w3 = connect(node.rpc_url)
    sessions = [ChainSession(w3, key) for key in dev_accounts(8)]
    market, deployed = MarketplaceContract.deploy(sessions[0])
    yield w3, sessions, market, deployed.block_number  # type: ignore[misc]
    node.stop()


def _count(db_url: str, table: type) -> int:
    _, sessions = open_database(db_url)
    with sessions() as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def test_idempotent_resume_and_reorg_depth(chain: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    w3, sessions, market, start = chain
    task_id, _ = market.create_task(_terms(sessions[1].address), "bafkspec", "bafkmodel")
    for s in sessions[2:6]:
        market.with_session(s).join(task_id, STAKE)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    _, db = open_database(url)

    held_back = Indexer(w3, market.address, db, start_block=start, reorg_depth=2, batch_blocks=1)
    added = held_back.sync()
    assert held_back.status.indexed_block == w3.eth.block_number - 2
    assert added == _count(url, EventRow) == 3  # TaskCreated + 2 of 4 joins: the last two blocks are not final

    restarted = Indexer(w3, market.address, db, start_block=start, batch_blocks=1)  # a new process, same database
    assert restarted.sync() == 2 and _count(url, EventRow) == 5
    assert restarted.sync() == 0  # nothing new: nothing twice

    with db() as session:  # re-indexing the whole range again stores nothing twice
        cursor = restarted.cursor(session)
        cursor.block_number = start - 1
        session.commit()
    assert restarted.sync() == 0 and _count(url, EventRow) == 5 and _count(url, MemberRow) == 4
    with db() as session:
        assert session.get(TaskRow, task_id).data_owners == 4  # type: ignore[union-attr]


def test_reorg_rolls_back_and_reindexes(chain: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    w3, sessions, market, start = chain
    task_id, _ = market.create_task(_terms(sessions[1].address), "bafkspec", "bafkmodel")
    market.with_session(sessions[2]).join(task_id, STAKE)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    market.with_session(sessions[3]).join(task_id, STAKE)
    market.with_session(sessions[4]).join(task_id, STAKE)
    url = f"sqlite:///{tmp_path / 'index.db'}"
    _, db = open_database(url)
    indexer = Indexer(w3, market.address, db, start_block=start)
    indexer.sync()
    assert _count(url, MemberRow) == 3

    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    market.with_session(sessions[5]).join(task_id, STAKE)  # the other branch: a different joiner
    for _ in range(3):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    indexer.sync()
    assert indexer.status.reorgs == 1
    with db() as session:
        members = session.scalars(select(MemberRow).order_by(MemberRow.index)).all()
        assert [m.address for m in members] == [sessions[i].address.lower() for i in (2, 5)]
        assert session.get(TaskRow, task_id).data_owners == 2  # type: ignore[union-attr]
    assert _count(url, EventRow) == 3
