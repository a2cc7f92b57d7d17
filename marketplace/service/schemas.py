"""The API's response shapes (they make the OpenAPI document). Token amounts are decimal strings: uint256
values do not fit a JSON number that JavaScript reads exactly."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TaskStatusName = Literal["open", "running", "finished", "cancelled"]
StatusFilter = Literal["open", "running", "finished", "cancelled", "active", "closed"]
Amount = str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    contract: str
    head_block: int | None
    indexed_block: int | None
    lag_blocks: int | None
    events_indexed: int
    reorgs: int
    last_error: str | None
    ipfs: bool


class TaskSummary(BaseModel):
    task_id: int
    name: str | None = Field(None, description="The spec's name, once the service has read the spec from IPFS")
    status: TaskStatusName
    owner: str
    aggregator: str
    token: str
    reward: Amount
    stake: Amount
    rounds: int
    current_round: int
    data_owners: int
    max_data_owners: int
    unverified: bool
    verifier: str
    spec_cid: str
    model_cid: str
    join_deadline: int
    created_block: int


class TaskPage(BaseModel):
    items: list[TaskSummary]
    total: int
    limit: int
    offset: int


class Member(BaseModel):
    index: int
    address: str
    stake: Amount
    earned: Amount
    slashed: Amount
    withdrawn: Amount
    submissions: int
    removed_round: int | None


class TaskDetail(TaskSummary):
    arbiter: str
    aggregator_bond: Amount
    challenge_bond: Amount
    min_data_owners: int
    periods: dict[str, int]
    rules: dict[str, Any]
    bond_posted: bool
    aggregator_fault: bool
    refunded_to_owner: Amount
    initial_model_cid: str
    created_tx: str
    spec: dict[str, Any] | None = Field(description="the task spec fetched from IPFS, cached")
    spec_error: str | None
    members: list[Member]


class ProofStatus(BaseModel):
    mode: Literal["verified", "unverified"] = Field(description="whether the contract checks a proof at finalize")
    verifier: str
    proof_bytes: int | None
    status: Literal["pending", "accepted", "not-required", "disputed", "voided"]


class Gas(BaseModel):
    finalize: int | None
    settle: int | None


class Round(BaseModel):
    round: int
    status: Literal["open", "finalized", "challenged", "settled", "voided"]
    global_model_cid: str
    model_cid: str | None
    submissions: int
    submit_deadline: int
    aggregate_deadline: int
    dispute_deadline: int | None
    weights: list[Amount] | None
    reputations: list[Amount] | None = Field(description="RFFL reputations, fixed point: 2^20 (1048576) = 1")
    contributions: list[str] | None = Field(description="signed int128 contribution values")
    removed: list[int] = Field(description="join indices of data owners removed in this round")
    accuracy: float | None
    accuracy_error: str | None
    gas: Gas
    finalize_tx: str | None
    settle_tx: str | None
    proof: ProofStatus
    pool: Amount | None
    credited: Amount | None
    to_owner: Amount | None


class Submission(BaseModel):
    index: int
    data_owner: str
    update_cid: str
    content_hash: str
    tx_hash: str


class PayoutEntry(BaseModel):
    round: int
    data_owner: str
    kind: Literal["reward", "slash"]
    contribution: str | None
    amount: Amount


class Dispute(BaseModel):
    task_id: int
    round: int
    challenger: str
    bond: Amount
    evidence_cid: str
    resolve_deadline: int
    outcome: Literal["open", "upheld", "rejected", "lapsed"]
    challenger_credit: Amount
    to_pool: Amount


class RoundDetail(Round):
    task_id: int
    submissions_list: list[Submission]
    payouts: list[PayoutEntry]
    disputes: list[Dispute]


class OwnerSeries(BaseModel):
    index: int
    address: str
    removed_round: int | None
    reputation: list[float | None] = Field(description="per round, as a fraction (posted value / 2^20)")
    contribution: list[float] = Field(description="cumulative max(contribution, 0) share of each round, summed")
    payout: list[Amount] = Field(description="cumulative rewards credited, per round")


class Series(BaseModel):
    """Everything the task page charts, in one request (the dashboard polls it while the task runs)."""

    task_id: int
    status: TaskStatusName
    rounds: list[int]
    accuracy: list[float | None]
    owners: list[OwnerSeries]
    removals: list[dict[str, Any]]


class Withdrawal(BaseModel):
    task_id: int
    account: str
    token: str
    amount: Amount
    block_number: int
    tx_hash: str


class EventOut(BaseModel):
    block_number: int
    tx_hash: str
    log_index: int
    name: str
    task_id: int
    round: int | None
    args: dict[str, Any]


class Membership(BaseModel):
    task_id: int
    task_status: TaskStatusName
    token: str
    index: int
    stake: Amount
    earned: Amount
    slashed: Amount
    withdrawn: Amount
    removed_round: int | None


class Account(BaseModel):
    address: str
    earned: dict[str, Amount] = Field(description="rewards credited, per token")
    staked: dict[str, Amount] = Field(description="stakes posted, per token")
    slashed: dict[str, Amount]
    withdrawn: dict[str, Amount]
    owned_tasks: list[int]
    aggregated_tasks: list[int]
    memberships: list[Membership]
    history: list[EventOut]


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    limit: int
    offset: int
