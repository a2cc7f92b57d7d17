"""Follows the Marketplace contract's logs into SQL: backfills in block batches, resumes, and survives reorgs.

Only blocks at or below head − reorg_depth are indexed, as final. In case the chain reorganised deeper than
that, the hashes of recently indexed blocks are re-checked on every poll; a mismatch rolls the index back to
the fork point and the affected tasks are rebuilt from their remaining events.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from marketplace.chain import events as ev
from marketplace.chain.artifacts import load_artifact
from marketplace.service import projector
from marketplace.service.db import BlockSeen, Cursor, EventRow, RoundRow

log = logging.getLogger(__name__)


@dataclass
class IndexerStatus:
    """What /health reports about the indexer."""

    head_block: int | None = None
    indexed_block: int | None = None
    events_indexed: int = 0
    reorgs: int = 0
    last_error: str | None = None
    last_sync: float | None = None


@dataclass
class _TxFacts:
    gas_used: int
    proof_bytes: int | None = None


@dataclass
class Indexer:
    """One contract, one database. `sync()` catches up once; `run()` keeps following until stopped."""

    w3: Web3
    address: str
    sessions: sessionmaker[Session]
    start_block: int = 0
    reorg_depth: int = 0
    recheck_window: int = 12
    batch_blocks: int = 2_000
    status: IndexerStatus = field(default_factory=IndexerStatus)

    def __post_init__(self) -> None:
        self.address = Web3.to_checksum_address(self.address)
        self.contract: Contract = self.w3.eth.contract(address=self.address, abi=load_artifact("Marketplace")["abi"])
        self._by_topic: dict[str, str] = {}
        for name in ev.EVENT_TYPES:
            topic = self.contract.events[name]().topic
            self._by_topic[HexBytes(topic).to_0x_hex()] = name
        self._lock = threading.Lock()

    # --- cursor ------------------------------------------------------------------------------

    def cursor(self, db: Session) -> Cursor:
        row = db.get(Cursor, self.address.lower())
        if row is None:
            row = Cursor(contract=self.address.lower(), block_number=self.start_block - 1, block_hash="")
            db.add(row)
            db.flush()
        return row

    # --- one pass ------------------------------------------------------------------------------

    def sync(self) -> int:
        """Index every final block not yet indexed; returns how many new events were stored."""
        with self._lock:
            head = int(self.w3.eth.block_number)
            final = head - self.reorg_depth
            self.status.head_block = head
            added = 0
            with self.sessions() as db:
                self._check_reorg(db)
                position = self.cursor(db).block_number
                db.commit()
            while position < final:
                upper = min(position + self.batch_blocks, final)
                added += self._index_range(position + 1, upper)
                position = upper
            self.status.indexed_block = max(position, self.start_block - 1)
            self.status.events_indexed += added
            self.status.last_sync = time.time()
            return added

    def _index_range(self, first: int, last: int) -> int:
        logs = self.w3.eth.get_logs({"address": self.address, "fromBlock": first, "toBlock": last})
        decoded = [(self._decode(entry), HexBytes(entry["blockHash"]).to_0x_hex()) for entry in logs]
        typed = [(event, block_hash) for event, block_hash in decoded if event is not None]
        last_hash = HexBytes(self.w3.eth.get_block(last)["hash"]).to_0x_hex()
        with self.sessions() as db:
            known = self._known(db, [event for event, _ in typed])
            facts = self._tx_facts([e for e, _ in typed if e.tx_hash not in known and _needs_receipt(e)])
            added = 0
            for event, block_hash in typed:
                if (event.tx_hash, event.log_index) in known:
                    continue
                db.add(projector.event_row(event, block_hash))
                projector.apply(db, event)
                self._record_cost(db, event, facts)
                added += 1
            for block_number, block_hash in {(e.block_number, h) for e, h in typed}:
                db.merge(BlockSeen(block_number=block_number, block_hash=block_hash))
            cursor = self.cursor(db)
            cursor.block_number, cursor.block_hash = last, last_hash
            db.commit()
        return added

    def _decode(self, entry: Any) -> ev.ChainEvent | None:
        topics = entry.get("topics") or []
        name = self._by_topic.get(HexBytes(topics[0]).to_0x_hex()) if topics else None
        if name is None:
            return None
        return ev.to_typed(self.contract.events[name]().process_log(entry))

    @staticmethod
    def _known(db: Session, found: list[ev.ChainEvent]) -> set[tuple[str, int]]:
        """Positions already stored: re-indexing a range stores nothing twice."""
        keys = [(e.tx_hash, e.log_index) for e in found]
        known: set[tuple[str, int]] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = select(EventRow.tx_hash, EventRow.log_index).where(
                tuple_(EventRow.tx_hash, EventRow.log_index).in_(chunk)
            )
            known.update((tx, index) for tx, index in db.execute(query))
        return known

    def _tx_facts(self, needing: list[ev.ChainEvent]) -> dict[str, _TxFacts]:
        """Gas of finalize and settle transactions from their receipts; proof size from the finalize calldata."""
        facts: dict[str, _TxFacts] = {}
        for event in needing:
            if event.tx_hash in facts:
                continue
            receipt = self.w3.eth.get_transaction_receipt(event.tx_hash)
            fact = _TxFacts(int(receipt["gasUsed"]))
            if isinstance(event, ev.RoundFinalized):
                fact.proof_bytes = self._proof_size(event.tx_hash)
            facts[event.tx_hash] = fact
        return facts

    def _proof_size(self, tx_hash: str) -> int | None:
        tx = self.w3.eth.get_transaction(tx_hash)
        if (tx.get("to") or "").lower() != self.address.lower():
            return None  # finalized through another contract: calldata is not ours to decode
        try:
            function, arguments = self.contract.decode_function_input(tx["input"])
        except ValueError:
            return None
        report = arguments.get("report")
        if function.fn_name != "finalizeRound" or report is None:
            return None
        proof = report["proof"] if isinstance(report, dict) else report[-1]
        return len(bytes(proof))

    @staticmethod
    def _record_cost(db: Session, event: ev.ChainEvent, facts: dict[str, _TxFacts]) -> None:
        fact = facts.get(event.tx_hash)
        if fact is None or not isinstance(event, ev.RoundFinalized | ev.RoundSettled):
            return
        row = db.get(RoundRow, (event.task_id, event.round))
        if row is None:
            return
        if isinstance(event, ev.RoundFinalized):
            row.finalize_gas, row.proof_bytes = fact.gas_used, fact.proof_bytes
        else:
            row.settle_gas = fact.gas_used

    # --- reorgs --------------------------------------------------------------------------------

    def _check_reorg(self, db: Session) -> None:
        """Compare recently indexed blocks' hashes with the chain; on a mismatch, roll back to the fork."""
        cursor = self.cursor(db)
        if cursor.block_number < self.start_block:
            return
        window_start = cursor.block_number - self.recheck_window
        seen = db.scalars(
            select(BlockSeen).where(BlockSeen.block_number >= window_start).order_by(BlockSeen.block_number)
        ).all()
        candidates = [(b.block_number, b.block_hash) for b in seen]
        if cursor.block_hash:
            candidates.append((cursor.block_number, cursor.block_hash))
        fork = None
        for number, stored in candidates:
            block = self.w3.eth.get_block(number) if number <= self.w3.eth.block_number else None
            if block is None or HexBytes(block["hash"]).to_0x_hex() != stored:
                fork = number
                break
        if fork is None:
            return
        rollback_to = max(min(fork, window_start), self.start_block)
        log.warning("reorg detected at block %d; re-indexing from block %d", fork, rollback_to)
        self.rollback(db, rollback_to)
        self.status.reorgs += 1

    def rollback(self, db: Session, first_block: int) -> None:
        """Forget everything from `first_block` on and rebuild the tasks it touched."""
        touched = set(db.scalars(select(EventRow.task_id).where(EventRow.block_number >= first_block)).all())
        db.execute(delete(EventRow).where(EventRow.block_number >= first_block))
        db.execute(delete(BlockSeen).where(BlockSeen.block_number >= first_block))
        projector.rebuild_tasks(db, touched)
        cursor = self.cursor(db)
        cursor.block_number, cursor.block_hash = first_block - 1, ""
        db.commit()

    # --- following -----------------------------------------------------------------------------

    def run(self, stop: threading.Event, poll_interval: float = 1.0) -> None:
        """Keep syncing until `stop` is set; a failing poll is reported in the status and retried."""
        while not stop.is_set():
            try:
                self.sync()
                self.status.last_error = None
            except Exception as exc:  # the chain or the database may be briefly unreachable: retry
                self.status.last_error = f"{exc.__class__.__name__}: {exc}"
                log.warning("indexer poll failed: %s", self.status.last_error)
            stop.wait(poll_interval)


def _needs_receipt(event: ev.ChainEvent) -> bool:
    return isinstance(event, ev.RoundFinalized | ev.RoundSettled)


def start_in_thread(indexer: Indexer, poll_interval: float) -> tuple[threading.Thread, threading.Event]:
    """Follow the chain in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=indexer.run, args=(stop, poll_interval), name="fedmarket-indexer", daemon=True)
    thread.start()
    return thread, stop
