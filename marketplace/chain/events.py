"""Typed records of the Marketplace contract's events, decoded from receipts or from log queries.

Every state change of the contract logs one of these, with the amounts and round numbers an indexer needs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from hexbytes import HexBytes
from web3.contract import Contract
from web3.logs import DISCARD


@dataclass(frozen=True)
class ChainEvent:
    """Where an event was logged; every typed event carries this."""

    block_number: int
    tx_hash: str
    log_index: int
    NAME: ClassVar[str] = ""


@dataclass(frozen=True)
class TaskCreated(ChainEvent):
    task_id: int
    owner: str
    aggregator: str
    terms: tuple[Any, ...]  # TaskTerms in ABI order; MarketplaceContract.get_terms gives the typed record
    unverified: bool
    spec_cid: str
    initial_model_cid: str
    join_deadline: int
    NAME: ClassVar[str] = "TaskCreated"


@dataclass(frozen=True)
class BondPosted(ChainEvent):
    task_id: int
    aggregator: str
    amount: int
    NAME: ClassVar[str] = "BondPosted"


@dataclass(frozen=True)
class Joined(ChainEvent):
    task_id: int
    data_owner: str
    index: int
    stake: int
    NAME: ClassVar[str] = "Joined"


@dataclass(frozen=True)
class TaskStarted(ChainEvent):
    task_id: int
    data_owners: int
    NAME: ClassVar[str] = "TaskStarted"


@dataclass(frozen=True)
class RoundOpened(ChainEvent):
    task_id: int
    round: int
    global_model_cid: str
    submit_deadline: int
    aggregate_deadline: int
    NAME: ClassVar[str] = "RoundOpened"


@dataclass(frozen=True)
class UpdateSubmitted(ChainEvent):
    task_id: int
    round: int
    data_owner: str
    index: int
    update_cid: str
    content_hash: bytes
    commitment: tuple[int, int]
    poseidon: int
    NAME: ClassVar[str] = "UpdateSubmitted"


@dataclass(frozen=True)
class RoundFinalized(ChainEvent):
    task_id: int
    round: int
    model_cid: str
    model_commitment: tuple[int, int]
    weights: tuple[int, ...]
    reputations: tuple[int, ...]
    contributions: tuple[int, ...]
    removals: int
    dispute_deadline: int
    NAME: ClassVar[str] = "RoundFinalized"


@dataclass(frozen=True)
class RoundChallenged(ChainEvent):
    task_id: int
    round: int
    challenger: str
    bond: int
    evidence_cid: str
    resolve_deadline: int
    NAME: ClassVar[str] = "RoundChallenged"


@dataclass(frozen=True)
class DisputeResolved(ChainEvent):
    task_id: int
    round: int
    challenger: str
    upheld: bool
    challenger_credit: int
    to_pool: int
    NAME: ClassVar[str] = "DisputeResolved"


@dataclass(frozen=True)
class DisputeLapsed(ChainEvent):
    task_id: int
    round: int
    challenger: str
    refunded: int
    NAME: ClassVar[str] = "DisputeLapsed"


@dataclass(frozen=True)
class RewardCredited(ChainEvent):
    task_id: int
    round: int
    data_owner: str
    contribution: int
    amount: int
    NAME: ClassVar[str] = "RewardCredited"


@dataclass(frozen=True)
class Slashed(ChainEvent):
    task_id: int
    round: int
    data_owner: str
    amount: int
    NAME: ClassVar[str] = "Slashed"


@dataclass(frozen=True)
class RoundSettled(ChainEvent):
    task_id: int
    round: int
    voided: bool
    pool: int
    credited: int
    to_owner: int
    NAME: ClassVar[str] = "RoundSettled"


@dataclass(frozen=True)
class TaskFinished(ChainEvent):
    task_id: int
    final_model_cid: str
    NAME: ClassVar[str] = "TaskFinished"


@dataclass(frozen=True)
class TaskCancelled(ChainEvent):
    task_id: int
    caller: str
    aggregator_fault: bool
    round: int
    to_owner: int
    NAME: ClassVar[str] = "TaskCancelled"


@dataclass(frozen=True)
class Withdrawn(ChainEvent):
    task_id: int
    account: str
    token: str
    amount: int
    NAME: ClassVar[str] = "Withdrawn"


EVENT_TYPES: dict[str, type[ChainEvent]] = {
    cls.NAME: cls
    for cls in (
        TaskCreated, BondPosted, Joined, TaskStarted, RoundOpened, UpdateSubmitted, RoundFinalized,
        RoundChallenged, DisputeResolved, DisputeLapsed, RewardCredited, Slashed, RoundSettled,
        TaskFinished, TaskCancelled, Withdrawn,
    )
}  # fmt: skip


def _plain(value: Any) -> Any:
    """ABI values as immutable Python values: bytes for bytesN, tuples for arrays and structs."""
    if isinstance(value, bytes | HexBytes):
        return bytes(value)
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(_plain(v) for v in value.values())
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_typed(log: Any) -> ChainEvent:
    """Convert one web3 decoded log (an AttributeDict) to its typed record."""
    cls = EVENT_TYPES[log["event"]]
    args = {_snake(k): _plain(v) for k, v in log["args"].items()}
    own = {f.name for f in fields(cls)} - {"block_number", "tx_hash", "log_index"}
    missing = own - args.keys()
    if missing:
        raise ValueError(f"event {cls.NAME} lacks fields {sorted(missing)}: ABI and bindings disagree")
    return cls(
        block_number=log["blockNumber"],
        tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
        log_index=log["logIndex"],
        **{k: args[k] for k in own},
    )


def events_in_receipt(contract: Contract, receipt: Any) -> list[ChainEvent]:
    """All of the contract's events in one receipt, in log order."""
    found: list[ChainEvent] = []
    for name in EVENT_TYPES:
        found.extend(to_typed(log) for log in contract.events[name]().process_receipt(receipt, errors=DISCARD))
    return sorted(found, key=lambda e: e.log_index)


def fetch_events(
    contract: Contract,
    name: str,
    from_block: int = 0,
    to_block: int | str = "latest",
    argument_filters: dict[str, Any] | None = None,
) -> list[ChainEvent]:
    """Events `name` between two blocks (inclusive), optionally filtered by indexed arguments."""
    logs = contract.events[name]().get_logs(
        from_block=from_block, to_block=to_block, argument_filters=argument_filters or {}
    )
    return [to_typed(log) for log in logs]
