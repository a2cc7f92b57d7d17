"""A small marketplace on the session's Anvil chain and IPFS node, shared by the service's API and browser tests.

Task A is a real federated task: published by the owner's code, trained by data owners, aggregated by the
aggregator's round code (real models on IPFS, so the service computes real accuracies). Task B is driven
directly through the contract (an `unverified` task reusing A's spec and models) to get what A's FedAvg
aggregator does not post: changing reputations and a removal with its slash.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3

from aggregator.round import RoundAggregator
from client.data_owner import DataOwner
from client.owner import TaskTerms, publish_task
from marketplace.chain.marketplace_contract import (
    ETH,
    REPUTATION_ONE,
    ZERO_POINT,
    MarketplaceContract,
    RoundReport,
    Rules,
)
from marketplace.chain.marketplace_contract import TaskTerms as ChainTerms
from marketplace.chain.session import ChainSession
from marketplace.data import dirichlet_split, load_builtin, split_holdout
from marketplace.ipfs import IpfsClient
from marketplace.models import ModelSpec
from marketplace.service.settings import ServiceSettings
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from marketplace.updates import generate_keypair, key_to_hex

OWNER, AGGREGATOR = 0, 1
A_OWNERS = (20, 21, 22)
B_OWNERS = (23, 24, 25, 26)
A_ROUNDS, B_ROUNDS = 2, 3
B_REMOVED_INDEX, B_REMOVED_ROUND = 3, 2
STAKE = 10**16


@dataclass(frozen=True)
class World:
    rpc_url: str
    ipfs_api: str
    marketplace: str
    start_block: int
    last_block: int
    task_a: int
    task_b: int
    spec_cid: str
    removed_address: str

    def settings(self, db_url: str, **overrides: object) -> ServiceSettings:
        base = {
            "rpc_url": self.rpc_url, "marketplace": self.marketplace, "db_url": db_url, "ipfs_api": self.ipfs_api,
            "start_block": self.start_block, "poll_interval": 0.2, "live_refresh_ms": 500,
        }  # fmt: skip
        return ServiceSettings(**(base | overrides))  # type: ignore[arg-type]


_BUILT: dict[str, World] = {}


def build_world(w3: Web3, accounts: list[LocalAccount], ipfs_api: str) -> World:
    """Build once per chain: the tasks stay on the session's Anvil for every module that needs them."""
    key = str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    if key not in _BUILT:
        _BUILT[key] = _build(w3, accounts, ipfs_api, key)
    return _BUILT[key]


def _build(w3: Web3, accounts: list[LocalAccount], ipfs_api: str, rpc_url: str) -> World:
    sessions = {i: ChainSession(w3, accounts[i]) for i in (OWNER, AGGREGATOR, *A_OWNERS, *B_OWNERS)}
    market, deployed = MarketplaceContract.deploy(sessions[OWNER])
    with IpfsClient(ipfs_api) as ipfs:
        files = TaskFiles(ipfs)
        task_a, spec_cid, models = _run_task_a(market, sessions, files)
    task_b, removed = _run_task_b(market, sessions, spec_cid, models)
    return World(rpc_url, ipfs_api, market.address, deployed.block_number, int(w3.eth.block_number),
                 task_a, task_b, spec_cid, removed)  # fmt: skip


def _run_task_a(
    market: MarketplaceContract, sessions: dict[int, ChainSession], files: TaskFiles
) -> tuple[int, str, list[str]]:
    data, schema = load_builtin("digits")
    train, validation, _ = split_holdout(data, val_fraction=0.15, test_fraction=0.2, seed=0)
    shards = [train.subset(p) for p in dirichlet_split(train.y, len(A_OWNERS), 0.5, seed=0)]
    private, public = generate_keypair()

    def make_spec(validation_cid: str) -> TaskSpec:
        return TaskSpec(
            name="digits-service-test", description="Handwritten digits, 3 data owners (service tests).",
            model=ModelSpec("mlp", schema.num_features, schema.num_classes, (16,)), data_schema=schema,
            validation_cid=validation_cid, aggregator_public_key=key_to_hex(public),
            training={"epochs": 3, "lr": 0.1},
        )  # fmt: skip

    terms = TaskTerms(10**18, STAKE, A_ROUNDS, 3600, sessions[AGGREGATOR].address, len(A_OWNERS))
    published = publish_task(market, files, make_spec, validation, terms)
    owners = [DataOwner(market.with_session(sessions[i]), files, s) for i, s in zip(A_OWNERS, shards, strict=True)]
    for owner in owners:
        owner.join(published.task_id)
    market.start_task(published.task_id)
    aggregator = RoundAggregator(market.with_session(sessions[AGGREGATOR]), files, private)
    models: list[str] = []
    for round_ in range(1, A_ROUNDS + 1):
        for owner in owners:
            owner.train_and_submit(published.task_id, round_)
        models.append(aggregator.aggregate_round(published.task_id, round_).model_cid)
    for owner in owners:
        owner.withdraw(published.task_id)
    return published.task_id, published.spec_cid, models


def _run_task_b(
    market: MarketplaceContract, sessions: dict[int, ChainSession], spec_cid: str, models: list[str]
) -> tuple[int, str]:
    terms = ChainTerms(
        token=ETH, reward=9 * 10**17, aggregator=sessions[AGGREGATOR].address, stake=STAKE,
        arbiter=sessions[OWNER].address, aggregator_bond=0, verifier="0x" + "00" * 20, challenge_bond=0,
        unverified=True, rounds=B_ROUNDS, min_data_owners=1, max_data_owners=len(B_OWNERS), join_period=3600,
        submission_period=3600, aggregation_period=3600, dispute_window=0, arbitration_period=0,
        rules=Rules(slash_bps=5_000),
    )  # fmt: skip
    task_id, _ = market.create_task(terms, spec_cid, models[0])
    members = [market.with_session(sessions[i]) for i in B_OWNERS]
    for member in members:
        member.join(task_id, STAKE)
    market.start_task(task_id)
    aggregator = market.with_session(sessions[AGGREGATOR])
    n = len(members)
    removed_mask = 0
    step = REPUTATION_ONE // 16  # binary fractions: the API returns them exactly (0.375, 0.3125, ...)
    reputation = [6 * step, 4 * step, 2 * step, step]
    for round_ in range(1, B_ROUNDS + 1):
        active = [i for i in range(n) if not (removed_mask >> i) & 1]
        for i in active:
            members[i].submit_update(task_id, round_, f"bafkqaaaround{round_}owner{i}", bytes([round_, i]) * 16)
        removals = 1 << B_REMOVED_INDEX if round_ == B_REMOVED_ROUND else 0
        gone = removed_mask | removals
        reputation = [0 if (gone >> i) & 1 else r + step * (i % 2) for i, r in enumerate(reputation)]
        contributions = tuple(0 if (gone >> i) & 1 else 10 + 5 * i + round_ for i in range(n))
        weights = tuple(0 if (gone >> i) & 1 else 1 for i in range(n))
        report = RoundReport(
            model_cid=models[min(round_, len(models)) - 1], commitments=(ZERO_POINT,) * n, poseidons=(0,) * n,
            weights=tuple(w if i in active else 0 for i, w in enumerate(weights)), reputations=tuple(reputation),
            contributions=tuple(c if i in active else 0 for i, c in enumerate(contributions)), removals=removals,
        )  # fmt: skip
        aggregator.finalize_round(task_id, round_, report)
        aggregator.settle_round(task_id, round_, report.contributions)
        removed_mask = gone
    for member in members:
        member.withdraw(task_id)
    return task_id, members[B_REMOVED_INDEX].session.address.lower()


def wait_indexed(url: str, block: int, timeout: float = 60.0) -> None:
    """Block until the running service reports it has indexed `block`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = httpx.get(f"{url}/health", timeout=5).json()
        if isinstance(last, dict) and (last.get("indexed_block") or -1) >= block:
            return
        time.sleep(0.1)
    raise AssertionError(f"the service did not index block {block} within {timeout} s: {last}")
