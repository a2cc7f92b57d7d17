"""Typed wrappers for every call of the Marketplace contract."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.events import ChainEvent, TaskCreated, events_in_receipt, fetch_events
from marketplace.chain.session import ChainSession, TxResult, revert_error
from marketplace.errors import ChainError

ARTIFACT = "Marketplace"


class TaskStatus(IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    FINISHED = 3


@dataclass(frozen=True)
class TaskInfo:
    """A task's terms and progress as the contract stores them."""

    task_id: int
    owner: str
    aggregator: str
    reward: int
    credited: int
    stake: int
    rounds: int
    current_round: int
    round_duration: int
    max_participants: int
    round_deadline: int
    status: TaskStatus
    refunded: bool
    spec_cid: str
    model_cid: str


@dataclass(frozen=True)
class ParticipantInfo:
    joined: bool
    withdrawn: bool
    index: int
    earned: int


@dataclass(frozen=True)
class CallResult:
    """A mined call: its cost and the typed events it emitted."""

    tx: TxResult
    events: list[ChainEvent]

    @property
    def gas_used(self) -> int:
        return self.tx.gas_used

    def first(self, event_type: type[ChainEvent]) -> Any:
        for event in self.events:
            if isinstance(event, event_type):
                return event
        raise ChainError(f"transaction {self.tx.tx_hash} emitted no {event_type.NAME}")


class MarketplaceContract:
    """One deployed Marketplace, used through one signing session."""

    def __init__(self, session: ChainSession, address: str) -> None:
        self.session = session
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = session.w3.eth.contract(address=self.address, abi=load_artifact(ARTIFACT)["abi"])
        if not session.w3.eth.get_code(self.address):
            raise ChainError(f"no contract at {self.address}", hint="check --marketplace and --rpc-url")

    @classmethod
    def deploy(cls, session: ChainSession) -> tuple[MarketplaceContract, TxResult]:
        artifact = load_artifact(ARTIFACT)
        address, tx = session.deploy(artifact["abi"], artifact["bytecode"])
        return cls(session, address), tx

    def with_session(self, session: ChainSession) -> MarketplaceContract:
        """The same contract, signing as another account."""
        return MarketplaceContract(session, self.address)

    def _send(self, call: Any, value: int = 0) -> CallResult:
        tx = self.session.transact(call, value=value)
        return CallResult(tx, events_in_receipt(self.contract, tx.receipt))

    # --- transactions -------------------------------------------------------------------------

    def create_task(
        self,
        spec_cid: str,
        initial_model_cid: str,
        reward: int,
        stake: int,
        rounds: int,
        round_duration: int,
        aggregator: str,
        max_participants: int,
    ) -> tuple[int, CallResult]:
        call = self.contract.functions.createTask(
            spec_cid,
            initial_model_cid,
            stake,
            rounds,
            round_duration,
            Web3.to_checksum_address(aggregator),
            max_participants,
        )
        result = self._send(call, value=reward)
        return result.first(TaskCreated).task_id, result

    def join(self, task_id: int, stake: int) -> CallResult:
        return self._send(self.contract.functions.join(task_id), value=stake)

    def start_task(self, task_id: int) -> CallResult:
        return self._send(self.contract.functions.startTask(task_id))

    def submit_update(self, task_id: int, round_: int, update_cid: str, commitment: bytes) -> CallResult:
        return self._send(self.contract.functions.submitUpdate(task_id, round_, update_cid, commitment))

    def finalize_round(self, task_id: int, round_: int, model_cid: str, contributions: list[int]) -> CallResult:
        return self._send(self.contract.functions.finalizeRound(task_id, round_, model_cid, contributions))

    def withdraw(self, task_id: int) -> CallResult:
        return self._send(self.contract.functions.withdraw(task_id))

    def refund(self, task_id: int) -> CallResult:
        return self._send(self.contract.functions.refund(task_id))

    # --- views --------------------------------------------------------------------------------

    def task_count(self) -> int:
        return int(self.contract.functions.taskCount().call())

    def get_task(self, task_id: int) -> TaskInfo:
        raw = self._view(self.contract.functions.getTask(task_id))
        return TaskInfo(
            task_id=task_id,
            owner=raw[0],
            aggregator=raw[1],
            reward=raw[2],
            credited=raw[3],
            stake=raw[4],
            rounds=raw[5],
            current_round=raw[6],
            round_duration=raw[7],
            max_participants=raw[8],
            round_deadline=raw[9],
            status=TaskStatus(raw[10]),
            refunded=raw[11],
            spec_cid=raw[12],
            model_cid=raw[13],
        )

    def get_participants(self, task_id: int) -> list[str]:
        return list(self._view(self.contract.functions.getParticipants(task_id)))

    def get_participant(self, task_id: int, account: str) -> ParticipantInfo:
        raw = self._view(self.contract.functions.getParticipant(task_id, Web3.to_checksum_address(account)))
        return ParticipantInfo(joined=raw[0], withdrawn=raw[1], index=raw[2], earned=raw[3])

    def submission_digest(self, task_id: int, round_: int, account: str) -> bytes:
        call = self.contract.functions.submissionDigest(task_id, round_, Web3.to_checksum_address(account))
        return bytes(self._view(call))

    def submission_count(self, task_id: int, round_: int) -> int:
        return int(self._view(self.contract.functions.submissionCount(task_id, round_)))

    def events(
        self, name: str, from_block: int = 0, to_block: int | str = "latest", **filters: Any
    ) -> list[ChainEvent]:
        """Typed events of one kind, e.g. `events("UpdateSubmitted", taskId=1, round=2)`."""
        return fetch_events(self.contract, name, from_block, to_block, filters or None)

    def _view(self, call: Any) -> Any:
        try:
            return call.call()
        except ContractLogicError as exc:
            raise revert_error(exc, self.contract.abi) from None
