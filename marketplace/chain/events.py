"""Typed records of the Marketplace contract's events, decoded from receipts or from log queries."""

from __future__ import annotations

import re
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
    spec_cid: str
    initial_model_cid: str
    reward: int
    stake: int
    rounds: int
    round_duration: int
    max_participants: int
    NAME: ClassVar[str] = "TaskCreated"


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
    participants: int
    NAME: ClassVar[str] = "TaskStarted"


@dataclass(frozen=True)
class RoundOpened(ChainEvent):
    task_id: int
    round: int
    global_model_cid: str
    deadline: int
    NAME: ClassVar[str] = "RoundOpened"


@dataclass(frozen=True)
class UpdateSubmitted(ChainEvent):
    task_id: int
    round: int
    data_owner: str
    update_cid: str
    commitment: bytes
    NAME: ClassVar[str] = "UpdateSubmitted"


@dataclass(frozen=True)
class RoundFinalized(ChainEvent):
    task_id: int
    round: int
    model_cid: str
    round_reward: int
    credited: int
    NAME: ClassVar[str] = "RoundFinalized"


@dataclass(frozen=True)
class RewardCredited(ChainEvent):
    task_id: int
    round: int
    data_owner: str
    contribution: int
    amount: int
    NAME: ClassVar[str] = "RewardCredited"


@dataclass(frozen=True)
class TaskFinished(ChainEvent):
    task_id: int
    final_model_cid: str
    credited: int
    NAME: ClassVar[str] = "TaskFinished"


@dataclass(frozen=True)
class Withdrawn(ChainEvent):
    task_id: int
    data_owner: str
    reward: int
    stake: int
    NAME: ClassVar[str] = "Withdrawn"


@dataclass(frozen=True)
class Refunded(ChainEvent):
    task_id: int
    owner: str
    amount: int
    NAME: ClassVar[str] = "Refunded"


EVENT_TYPES: dict[str, type[ChainEvent]] = {
    cls.NAME: cls
    for cls in (
        TaskCreated, Joined, TaskStarted, RoundOpened, UpdateSubmitted,
        RoundFinalized, RewardCredited, TaskFinished, Withdrawn, Refunded,
    )
}  # fmt: skip


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def to_typed(log: Any) -> ChainEvent:
    """Convert one web3 decoded log (an AttributeDict) to its typed record."""
    cls = EVENT_TYPES[log["event"]]
    args = {_snake(k): (bytes(v) if isinstance(v, bytes | HexBytes) else v) for k, v in log["args"].items()}
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
