"""A protocol task on the real chain and IPFS node: owner, honest data owners, one attacker, an aggregator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aggregator.fixedpoint import ONE
from aggregator.protocol import collect, plan
from aggregator.record import RoundRecord
from aggregator.round import RoundAggregator
from client.audit import audit_task
from client.data_owner import DataOwner, UpdateTransform
from client.owner import PublishedTask, TaskTerms, publish_task
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainSession
from marketplace.data import Dataset, dirichlet_split, load_builtin, split_holdout
from marketplace.models import ModelSpec
from marketplace.task_files import TaskFiles
from marketplace.task_spec import CAPPED_VERSIONS, LINKED_VERSIONS, ProtocolSpec, TaskSpec
from marketplace.updates import generate_keypair, key_to_hex

OWNER, AGGREGATOR, FIRST_DATA_OWNER = 0, 1, 2
ETH = 10**18


def sign_flip(delta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The attacker sends the opposite of its honest step."""
    return {name: -array for name, array in delta.items()}


def scaled(delta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The attacker boosts its honest step tenfold: after clipping it looks honest to the cosine."""
    return {name: 10 * array for name, array in delta.items()}


def as_trained(delta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The attacker sends its step as trained: its attack is in its data (build_market's `poisoned`)."""
    return delta


def fresh_noise(seed: int = 7) -> UpdateTransform:
    """A free-rider that trains nothing and sends a new U(−1, 1) vector every round (RFFL's free-rider)."""
    rng = np.random.default_rng(seed)

    def send(delta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: rng.uniform(-1.0, 1.0, size=array.shape).astype(array.dtype) for name, array in delta.items()}

    return send


@dataclass
class ProtocolMarket:
    published: PublishedTask
    owner: MarketplaceContract
    aggregator: RoundAggregator
    aggregator_private: bytes
    data_owners: list[DataOwner]
    transforms: dict[str, UpdateTransform]
    files: TaskFiles
    validation: Dataset
    terms: TaskTerms
    stakes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task_id(self) -> int:
        return self.published.task_id

    @property
    def attacker(self) -> DataOwner:
        return self.data_owners[-1]

    def submit_all(self, round_: int) -> None:
        """Every data owner not removed trains and submits (the attacker through its transform)."""
        for member in self.data_owners:
            if not member.is_removed(self.task_id):
                member.train_and_submit(self.task_id, round_, transform=self.transforms.get(member.address))


def _dispute_terms(arbiter: str) -> dict[str, Any]:
    return {"arbiter": arbiter, "arbitration_period": 60, "challenge_bond": ETH // 100}


def protocol_spec(proof: str, rule_version: str = "rffl-v2", **overrides: Any) -> ProtocolSpec:
    """Groth16 tasks default to rffl-v2 (its own proven cosine filter, τ = 0; rffl-v3 and rffl-v4 add the norm
    filter, k = 3); the others use norm_outlier."""
    options: dict[str, Any] = {"proof": proof, "gamma": 2.0, "value_bits": 16, "alpha": "0.5"}
    if proof == "groth16":
        options["rule_version"] = rule_version
    if proof == "groth16" and rule_version in LINKED_VERSIONS:
        options["filter_threshold"] = "0"
        if rule_version in CAPPED_VERSIONS:
            options["norm_ratio"] = "3"
    else:
        options["filters"] = ({"name": "norm_outlier", "k": 4.0},)
    options.update(overrides)
    return ProtocolSpec(**options)


def build_market(
    marketplace: MarketplaceContract,
    session_for: Callable[[int], ChainSession],
    files: TaskFiles,
    *,
    proof: str = "groth16",
    honest: int = 3,
    attacker: UpdateTransform | None = sign_flip,
    rounds: int = 3,
    dispute_window: int = 0,
    dataset: str = "breast_cancer",
    verifier: str | None = None,
    rule_version: str = "rffl-v2",
    rules_overrides: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    poisoned: Callable[[Dataset], Dataset] | None = None,
) -> ProtocolMarket:
    """`poisoned` rewrites the attacker's shard before it trains (a backdoor); `attacker` then its step."""
    data, schema = load_builtin(dataset)
    train, validation, _ = split_holdout(data, val_fraction=0.2, test_fraction=0.2, seed=0)
    count = honest + (1 if attacker is not None else 0)
    shards = [train.subset(p) for p in dirichlet_split(train.y, count, 100.0, seed=0)]
    if poisoned is not None and attacker is not None:
        shards[-1] = poisoned(shards[-1])
    private, public = generate_keypair()
    rules = protocol_spec(proof, rule_version, **(rules_overrides or {}))

    def make_spec(validation_cid: str) -> TaskSpec:
        return TaskSpec(
            name=f"{dataset} protocol task",
            model=ModelSpec("logreg", schema.num_features, schema.num_classes),
            data_schema=schema,
            validation_cid=validation_cid,
            aggregator_public_key=key_to_hex(public),
            scale_bits=12,
            bound=rules.bound,
            training=training or {"epochs": 2, "lr": 0.1},
            protocol=rules.to_dict(),
        )

    stake = ETH // 10
    terms = TaskTerms(
        reward=3 * ETH, stake=stake, rounds=rounds, round_duration=3600,
        aggregator=session_for(AGGREGATOR).address, max_participants=count, min_participants=count,
        dispute_window=dispute_window, **({"verifier": verifier} if verifier else {}),
        **(_dispute_terms(session_for(OWNER).address) if dispute_window else {}),
    )  # fmt: skip
    published = publish_task(marketplace, files, make_spec, validation, terms)
    members = [
        DataOwner(marketplace.with_session(session_for(FIRST_DATA_OWNER + i)), files, shard)
        for i, shard in enumerate(shards)
    ]
    for member in members:
        member.join(published.task_id)
    marketplace.start_task(published.task_id)
    aggregator = RoundAggregator(marketplace.with_session(session_for(AGGREGATOR)), files, private)
    transforms = {members[-1].address: attacker} if attacker is not None else {}
    return ProtocolMarket(
        published, marketplace, aggregator, private, members, transforms, files, validation, terms, stake * count
    )


def restarted_aggregator(market: ProtocolMarket) -> RoundAggregator:
    """A fresh aggregator on the task's aggregator account: it knows nothing but what the chain and IPFS hold."""
    return RoundAggregator(market.owner.with_session(market.aggregator.contract.session), market.files,
                           market.aggregator_private)  # fmt: skip


def replan(market: ProtocolMarket, round_: int, aggregator: RoundAggregator | None = None) -> RoundRecord:
    """Round `round_` as a restarted aggregator plans it (call it before the task's aggregator posts the round)."""
    fresh = aggregator or restarted_aggregator(market)
    return plan(fresh, market.task_id, round_, collect(fresh, market.task_id, round_)).record


def assert_dropped_at_quarter(
    record: RoundRecord | None, replayed: RoundRecord, attacker: int, honest: list[int]
) -> None:
    """The attacker's update was received and dropped, scoring the task's missing_score -1/4 (below every honest
    owner's positive score), honest owners were kept, and a restarted aggregator planned the same round."""
    assert record is not None
    print(f"round {record.round}: flags {record.flags}, phis {record.phis}, reputations {record.reputations_after}")
    assert record.flags[attacker] & 2 == 0 and record.weights[attacker] == 0  # submitted, dropped
    assert all(record.flags[i] & 2 and record.weights[i] > 0 for i in honest)
    assert record.phis[attacker] <= -ONE // 4 < 0 < min(record.phis[i] for i in honest)
    assert (replayed.flags, replayed.weights, replayed.phis) == (record.flags, record.weights, record.phis)


def assert_last_round_removes(market: ProtocolMarket, round_: int, attacker: int, honest: list[int]) -> None:
    """Round `round_` (the task's last) keeps every honest owner, the attacker ends removed and slashed, and the
    whole task passes the audit."""
    market.submit_all(round_)
    last = market.aggregator.aggregate_round(market.task_id, round_).record
    assert last is not None and all(last.flags[i] & 2 for i in honest)
    info = market.owner.get_task(market.task_id)
    assert info.removed_mask == 1 << attacker and info.slashed_mask == 1 << attacker
    report = audit_task(market.owner, market.files, market.task_id, market.validation)
    assert report.passed, report.failures()
