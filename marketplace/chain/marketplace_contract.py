"""Typed wrappers for every call of the Marketplace contract, and the records its views return."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from enum import IntEnum
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.events import ChainEvent, TaskCreated, UpdateSubmitted, events_in_receipt, fetch_events
from marketplace.chain.session import ChainSession, TxResult, revert_error
from marketplace.errors import ChainError

ARTIFACT = "Marketplace"
ETH = "0x" + "00" * 20  # token address of ETH-paid tasks
ZERO_POINT: tuple[int, int] = (0, 0)  # BN254 point at infinity: the commitment of "no submission"
# a RoundReport's reputations: fixed point with 2^20 = 1, the scale the rules proof binds and the aggregator
# reads back as RFFL state (aggregator.fixedpoint.ONE)
REPUTATION_ONE = 1 << 20
BPS = 10_000


class TaskStatus(IntEnum):
    NONE = 0
    OPEN = 1
    RUNNING = 2
    FINISHED = 3
    CANCELLED = 4


class RoundStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FINALIZED = 2
    SETTLED = 3
    VOIDED = 4


class PayoutPolicy(IntEnum):
    PROPORTIONAL = 0  # by max(contribution, 0)
    EQUAL = 1  # the same to every non-removed data owner with a positive contribution


@dataclass(frozen=True)
class Rules:
    """The task's aggregation rules as recorded on chain (fixed point), for auditors; the contract uses slash_bps
    and payout_policy itself."""

    clip_norm: int = 0
    alpha_ppm: int = 950_000
    beta_ppm: int = 333_333
    slash_bps: int = 5_000
    payout_policy: PayoutPolicy = PayoutPolicy.PROPORTIONAL


@dataclass(frozen=True)
class TaskTerms:
    """What the owner fixes when publishing a task; field order is the contract's struct order."""

    token: str
    reward: int
    aggregator: str
    stake: int
    arbiter: str
    aggregator_bond: int
    verifier: str
    challenge_bond: int
    unverified: bool
    rounds: int
    min_data_owners: int
    max_data_owners: int
    join_period: int
    submission_period: int
    aggregation_period: int
    dispute_window: int
    arbitration_period: int
    rules: Rules = field(default_factory=Rules)

    def to_abi(self) -> tuple[Any, ...]:
        values = list(astuple(self))
        values[-1] = astuple(self.rules)
        for i in (0, 2, 4, 6):
            values[i] = Web3.to_checksum_address(values[i])
        return tuple(values)

    @classmethod
    def from_abi(cls, raw: Any) -> TaskTerms:
        values = list(raw)
        rules = Rules(*values[-1][:4], PayoutPolicy(values[-1][4]))
        return cls(*values[:-1], rules=rules)

    @property
    def is_eth(self) -> bool:
        return int(self.token, 16) == 0

    @property
    def round_reward(self) -> int:
        return self.reward // self.rounds


@dataclass(frozen=True)
class TaskInfo:
    """A task's progress as the contract stores it, with its terms."""

    task_id: int
    owner: str
    status: TaskStatus
    current_round: int
    unsettled_rounds: int
    data_owners: int
    bond_posted: bool
    join_deadline: int
    removed_count: int
    slashed_count: int
    owner_paid: bool
    aggregator_paid: bool
    aggregator_fault: bool
    owner_credit: int
    bond_forfeited: int
    removed_mask: int
    slashed_mask: int
    spec_cid: str
    model_cid: str
    terms: TaskTerms

    @property
    def stake(self) -> int:
        return self.terms.stake

    @property
    def aggregator(self) -> str:
        return self.terms.aggregator

    @property
    def closed(self) -> bool:
        """Over and fully settled: rewards, stakes, bonds and refunds can be withdrawn."""
        return self.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED) and self.unsettled_rounds == 0


@dataclass(frozen=True)
class RoundInfo:
    submit_deadline: int
    aggregate_deadline: int
    dispute_deadline: int
    submitted: int
    status: RoundStatus
    challenger: str
    challenge_deadline: int
    extra_pool: int
    removals: int
    contributions_digest: bytes


@dataclass(frozen=True)
class ParticipantInfo:
    joined: bool
    withdrawn: bool
    index: int
    earned: int


@dataclass(frozen=True)
class Payout:
    """What one account may take out of a task, by source."""

    earned: int
    stake: int
    bond_share: int
    owner_refund: int
    aggregator_bond: int
    challenge_credit: int
    total: int


@dataclass(frozen=True)
class RoundReport:
    """What the aggregator posts to close a round; per-owner tuples run in join order."""

    model_cid: str
    commitments: tuple[tuple[int, int], ...]
    poseidons: tuple[int, ...]
    weights: tuple[int, ...]
    reputations: tuple[int, ...]
    contributions: tuple[int, ...]
    removals: int = 0
    model_commitment: tuple[int, int] = ZERO_POINT
    proof: bytes = b""

    @classmethod
    def empty(cls, model_cid: str, data_owners: int) -> RoundReport:
        """A round where nobody submitted (or everything was left out)."""
        zeros = (0,) * data_owners
        return cls(model_cid, (ZERO_POINT,) * data_owners, zeros, zeros, zeros, zeros)

    def to_abi(self) -> tuple[Any, ...]:
        return (
            self.model_cid,
            list(self.model_commitment),
            [list(p) for p in self.commitments],
            list(self.poseidons),
            list(self.weights),
            list(self.reputations),
            list(self.contributions),
            self.removals,
            self.proof,
        )


def submission_digest(commitment: tuple[int, int], poseidon: int) -> bytes:
    """The digest the contract stores for a submission: keccak256(abi.encode(x, y, poseidon))."""
    return keccak(encode(["uint256", "uint256", "uint256"], [commitment[0], commitment[1], poseidon]))


def removal_mask(indices: list[int]) -> int:
    """Bit mask of removed data owners' join indices."""
    return sum(1 << i for i in set(indices))


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

    def all(self, event_type: type[ChainEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, event_type)]


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
    # Calls that deposit take `value`: the amount in wei for ETH tasks, 0 for ERC-20 tasks (approve first).

    def create_task(
        self, terms: TaskTerms, spec_cid: str, initial_model_cid: str, value: int | None = None
    ) -> tuple[int, CallResult]:
        """Publish a task; sends the reward with it for ETH tasks unless `value` says otherwise."""
        if value is None:
            value = terms.reward if terms.is_eth else 0
        result = self._send(self.contract.functions.createTask(terms.to_abi(), spec_cid, initial_model_cid), value)
        return result.first(TaskCreated).task_id, result

    def post_bond(self, task_id: int, value: int) -> CallResult:
        return self._send(self.contract.functions.postBond(task_id), value=value)

    def join(self, task_id: int, value: int) -> CallResult:
        return self._send(self.contract.functions.join(task_id), value=value)

    def start_task(self, task_id: int) -> CallResult:
        return self._send(self.contract.functions.startTask(task_id))

    def submit_update(
        self,
        task_id: int,
        round_: int,
        update_cid: str,
        content_hash: bytes,
        commitment: tuple[int, int] = ZERO_POINT,
        poseidon: int = 0,
    ) -> CallResult:
        call = self.contract.functions.submitUpdate(
            task_id, round_, update_cid, bytes(content_hash), list(commitment), poseidon
        )
        return self._send(call)

    def finalize_round(self, task_id: int, round_: int, report: RoundReport) -> CallResult:
        return self._send(self.contract.functions.finalizeRound(task_id, round_, report.to_abi()))

    def settle_round(self, task_id: int, round_: int, contributions: tuple[int, ...] | list[int]) -> CallResult:
        return self._send(self.contract.functions.settleRound(task_id, round_, list(contributions)))

    def challenge_round(self, task_id: int, round_: int, evidence_cid: str, value: int) -> CallResult:
        return self._send(self.contract.functions.challengeRound(task_id, round_, evidence_cid), value=value)

    def resolve_dispute(self, task_id: int, round_: int, upheld: bool) -> CallResult:
        return self._send(self.contract.functions.resolveDispute(task_id, round_, upheld))

    def cancel_task(self, task_id: int) -> CallResult:
        return self._send(self.contract.functions.cancelTask(task_id))

    def withdraw(self, task_id: int) -> CallResult:
        return self._send(self.contract.functions.withdraw(task_id))

    # --- views --------------------------------------------------------------------------------

    def task_count(self) -> int:
        return int(self.contract.functions.taskCount().call())

    def held(self, token: str = ETH) -> int:
        """What the contract owes in `token`, across all tasks."""
        return int(self.contract.functions.held(Web3.to_checksum_address(token)).call())

    def get_terms(self, task_id: int) -> TaskTerms:
        return TaskTerms.from_abi(self._view(self.contract.functions.getTerms(task_id)))

    def get_task(self, task_id: int) -> TaskInfo:
        raw = list(self._view(self.contract.functions.getTask(task_id)))
        raw[1] = TaskStatus(raw[1])
        return TaskInfo(task_id, *raw, terms=self.get_terms(task_id))

    def get_round(self, task_id: int, round_: int) -> RoundInfo:
        raw = list(self._view(self.contract.functions.getRound(task_id, round_)))
        raw[4] = RoundStatus(raw[4])
        raw[9] = bytes(raw[9])
        return RoundInfo(*raw)

    def get_participants(self, task_id: int) -> list[str]:
        return list(self._view(self.contract.functions.getParticipants(task_id)))

    def get_participant(self, task_id: int, account: str) -> ParticipantInfo:
        raw = self._view(self.contract.functions.getParticipant(task_id, Web3.to_checksum_address(account)))
        return ParticipantInfo(*raw)

    def submission_digest(self, task_id: int, round_: int, index: int) -> bytes:
        return bytes(self._view(self.contract.functions.submissionDigest(task_id, round_, index)))

    def payout_of(self, task_id: int, account: str) -> tuple[Payout, bool]:
        """What `account` may withdraw, and whether the task is closed (else: what it will get once closed)."""
        raw, closed = self._view(self.contract.functions.payoutOf(task_id, Web3.to_checksum_address(account)))
        return Payout(*raw), bool(closed)

    def submissions(self, task_id: int, round_: int, from_block: int = 0) -> dict[int, UpdateSubmitted]:
        """A round's UpdateSubmitted events keyed by the data owner's join index."""
        found = self.events("UpdateSubmitted", from_block, taskId=task_id, round=round_)
        return {e.index: e for e in found if isinstance(e, UpdateSubmitted)}

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
