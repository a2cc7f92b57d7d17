"""The index's tables: the raw event log (the source of truth) and the tables derived from it for the API.

Amounts and masks are uint256 on chain, wider than any SQL integer; they are stored as zero-padded decimal
strings (`Uint`), so that they stay exact and still compare and sort correctly in SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

UINT_DIGITS = 78  # 2**256 has 78 decimal digits


class Uint(TypeDecorator[int]):
    """An unsigned 256-bit integer as a fixed-width decimal string: exact, and ordered like the number."""

    impl = String(UINT_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        number = int(value)
        if number < 0:
            raise ValueError(f"{number} is negative; Uint holds unsigned values")
        return str(number).zfill(UINT_DIGITS)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


class Base(DeclarativeBase):
    pass


class Cursor(Base):
    """How far the index has gone, and the hash of that block, to notice a reorg that went deeper than allowed."""

    __tablename__ = "cursor"
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    block_number: Mapped[int] = mapped_column(Integer)
    block_hash: Mapped[str] = mapped_column(String(66), default="")


class BlockSeen(Base):
    """Hashes of recent indexed blocks that held events, re-checked against the chain for reorgs."""

    __tablename__ = "blocks_seen"
    block_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_hash: Mapped[str] = mapped_column(String(66))


class EventRow(Base):
    """One contract log, decoded; (tx_hash, log_index) makes re-indexing a no-op."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_event_position"),
        Index("ix_events_task", "task_id", "block_number", "log_index"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(Integer, index=True)
    block_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(32), index=True)
    task_id: Mapped[int] = mapped_column(Integer)
    round: Mapped[int | None] = mapped_column(Integer, nullable=True)
    account: Mapped[str | None] = mapped_column(String(42), nullable=True, index=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)


class TaskRow(Base):
    __tablename__ = "tasks"
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(42), index=True)
    aggregator: Mapped[str] = mapped_column(String(42), index=True)
    arbiter: Mapped[str] = mapped_column(String(42))
    verifier: Mapped[str] = mapped_column(String(42))
    token: Mapped[str] = mapped_column(String(42), index=True)
    reward: Mapped[int] = mapped_column(Uint)
    stake: Mapped[int] = mapped_column(Uint)
    aggregator_bond: Mapped[int] = mapped_column(Uint)
    challenge_bond: Mapped[int] = mapped_column(Uint)
    unverified: Mapped[bool] = mapped_column(Boolean)
    rounds: Mapped[int] = mapped_column(Integer)
    min_data_owners: Mapped[int] = mapped_column(Integer)
    max_data_owners: Mapped[int] = mapped_column(Integer)
    periods: Mapped[dict[str, int]] = mapped_column(JSON)
    rules: Mapped[dict[str, int]] = mapped_column(JSON)
    spec_cid: Mapped[str] = mapped_column(Text)
    initial_model_cid: Mapped[str] = mapped_column(Text)
    model_cid: Mapped[str] = mapped_column(Text)
    join_deadline: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    data_owners: Mapped[int] = mapped_column(Integer, default=0)
    current_round: Mapped[int] = mapped_column(Integer, default=0)
    bond_posted: Mapped[bool] = mapped_column(Boolean, default=False)
    aggregator_fault: Mapped[bool] = mapped_column(Boolean, default=False)
    refunded_to_owner: Mapped[int] = mapped_column(Uint, default=0)
    created_block: Mapped[int] = mapped_column(Integer)
    created_tx: Mapped[str] = mapped_column(String(66))


class MemberRow(Base):
    """A data owner in a task: stake, earnings, and whether and when it was removed."""

    __tablename__ = "members"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.task_id"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    stake: Mapped[int] = mapped_column(Uint)
    earned: Mapped[int] = mapped_column(Uint, default=0)
    slashed: Mapped[int] = mapped_column(Uint, default=0)
    removed_round: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Uint, default=0)
    joined_block: Mapped[int] = mapped_column(Integer)


class RoundRow(Base):
    """One round: what opened it, what the aggregator posted, what it cost, what it paid."""

    __tablename__ = "rounds"
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.task_id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    global_model_cid: Mapped[str] = mapped_column(Text)
    submit_deadline: Mapped[int] = mapped_column(Integer)
    aggregate_deadline: Mapped[int] = mapped_column(Integer)
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    model_cid: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_commitment: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    weights: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    reputations: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    contributions: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    removals: Mapped[int] = mapped_column(Uint, default=0)
    dispute_deadline: Mapped[int | None] = mapped_column(Integer, nullable=True)
    finalize_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    finalize_gas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    proof_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    settle_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    settle_gas: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pool: Mapped[int | None] = mapped_column(Uint, nullable=True)
    credited: Mapped[int | None] = mapped_column(Uint, nullable=True)
    to_owner: Mapped[int | None] = mapped_column(Uint, nullable=True)
    accuracy: Mapped[float | None] = mapped_column(Float, nullable=True)
    accuracy_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class SubmissionRow(Base):
    __tablename__ = "submissions"
    task_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    data_owner: Mapped[str] = mapped_column(String(42))
    update_cid: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(66))
    tx_hash: Mapped[str] = mapped_column(String(66))


class PayoutRow(Base):
    """A data owner's credit (RewardCredited) or slash (Slashed) in one round."""

    __tablename__ = "payouts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(Integer, index=True)
    round: Mapped[int] = mapped_column(Integer)
    data_owner: Mapped[str] = mapped_column(String(42), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # "reward" or "slash"
    contribution: Mapped[str | None] = mapped_column(String(48), nullable=True)  # int128, signed
    amount: Mapped[int] = mapped_column(Uint)


class DisputeRow(Base):
    __tablename__ = "disputes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(Integer, index=True)
    round: Mapped[int] = mapped_column(Integer)
    challenger: Mapped[str] = mapped_column(String(42), index=True)
    bond: Mapped[int] = mapped_column(Uint)
    evidence_cid: Mapped[str] = mapped_column(Text)
    resolve_deadline: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16), default="open")  # open, upheld, rejected, lapsed
    challenger_credit: Mapped[int] = mapped_column(Uint, default=0)
    to_pool: Mapped[int] = mapped_column(Uint, default=0)


class WithdrawalRow(Base):
    __tablename__ = "withdrawals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(Integer, index=True)
    account: Mapped[str] = mapped_column(String(42), index=True)
    token: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(Uint)
    block_number: Mapped[int] = mapped_column(Integer)
    tx_hash: Mapped[str] = mapped_column(String(66))


class SpecCache(Base):
    """Task specs fetched from IPFS once; a failure is remembered too, so a missing CID costs one lookup."""

    __tablename__ = "spec_cache"
    cid: Mapped[str] = mapped_column(String(128), primary_key=True)
    document: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


DERIVED_TABLES = (MemberRow, RoundRow, SubmissionRow, PayoutRow, DisputeRow, WithdrawalRow, TaskRow)


def make_engine(url: str) -> Engine:
    """An engine whose SQLite flavour tolerates the indexer thread and the API threads writing at once."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if ":memory:" not in url:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def open_database(url: str) -> tuple[Engine, sessionmaker[Any]]:
    """Create the tables if needed; return the engine and a session factory."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)
