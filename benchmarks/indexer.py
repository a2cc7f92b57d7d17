"""Indexer throughput and API latency for one large task: 100 data owners × 50 rounds on a local Anvil.

The task is `unverified` and driven straight through the Marketplace contract (joins, submissions, finalize
and settle of every round, one removal), so the chain holds the real event mix of a long task. Then a fresh
index is built from the deployment block (events/s), and the API is timed (p50/p95 per endpoint).

Usage: python benchmarks/indexer.py [--quick]      (quick: 20 data owners × 10 rounds)
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from marketplace.chain.anvil import LocalAnvil, dev_accounts
from marketplace.chain.marketplace_contract import ETH, ZERO_POINT, MarketplaceContract, RoundReport, Rules, TaskTerms
from marketplace.chain.session import ChainSession, connect
from marketplace.service.db import EventRow, open_database
from marketplace.service.indexer import Indexer
from marketplace.service.server import running_service
from marketplace.service.settings import ServiceSettings

RESULTS = Path(__file__).resolve().parent / "results" / "indexer.json"
STAKE = 10**15
REQUESTS = 40


class FastSender:
    """Signs and sends without simulating or waiting (Anvil mines each at once); local nonces, fixed gas."""

    def __init__(self, session: ChainSession) -> None:
        self.session = session
        self.nonce = session.w3.eth.get_transaction_count(session.address)
        self.fees = {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}

    def send(self, call: Any, gas: int, value: int = 0) -> str:
        tx = call.build_transaction({"from": self.session.address, "nonce": self.nonce, "gas": gas, "value": value,
                                     "chainId": self.session.chain_id, **self.fees})  # fmt: skip
        self.nonce += 1
        signed = self.session.account.sign_transaction(tx)
        return self.session.w3.eth.send_raw_transaction(signed.raw_transaction).to_0x_hex()


def drive_task(market: MarketplaceContract, sessions: list[ChainSession], owners: int, rounds: int) -> int:
    """Publish, fill and run a whole task; returns its id. Data owner `owners - 1` is removed in round 2."""
    terms = TaskTerms(
        token=ETH, reward=10**18, aggregator=sessions[1].address, stake=STAKE, arbiter=sessions[0].address,
        aggregator_bond=0, verifier="0x" + "00" * 20, challenge_bond=0, unverified=True, rounds=rounds,
        min_data_owners=1, max_data_owners=owners, join_period=10**6, submission_period=10**6,
        aggregation_period=10**6, dispute_window=0, arbitration_period=0, rules=Rules(slash_bps=5_000),
    )  # fmt: skip
    task_id, _ = market.create_task(terms, "bafkreibenchspec", "bafkreibenchmodel0")
    functions = market.contract.functions
    members = [FastSender(s) for s in sessions[2 : 2 + owners]]
    for m in members:
        m.send(functions.join(task_id), 150_000, STAKE)
    market.start_task(task_id)
    aggregator = FastSender(sessions[1])
    removed = 0
    for round_ in range(1, rounds + 1):
        active = [i for i in range(owners) if not (removed >> i) & 1]
        for i in active:
            call = functions.submitUpdate(task_id, round_, f"bafkreiupdate{round_}x{i}", bytes(32), [0, 0], 0)
            members[i].send(call, 200_000)
        removals = 1 << (owners - 1) if round_ == 2 else 0
        gone = removed | removals
        contributions = tuple(0 if (gone >> i) & 1 else 1 + (i * 7 + round_) % 13 for i in range(owners))
        report = RoundReport(
            model_cid=f"bafkreibenchmodel{round_}", commitments=(ZERO_POINT,) * owners, poseidons=(0,) * owners,
            weights=tuple(int(c > 0) for c in contributions), contributions=contributions, removals=removals,
            reputations=tuple(0 if (gone >> i) & 1 else 1_000_000 // owners + i for i in range(owners)),
        )  # fmt: skip
        aggregator.send(functions.finalizeRound(task_id, round_, report.to_abi()), 6_000_000)
        last = aggregator.send(functions.settleRound(task_id, round_, list(contributions)), 8_000_000)
        receipt = market.session.w3.eth.wait_for_transaction_receipt(last, poll_latency=0.01)
        if receipt["status"] != 1:
            raise RuntimeError(f"round {round_} failed to settle")
        removed = gone
    return task_id


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_api(url: str, task_id: int, account: str, rounds: int) -> dict[str, dict[str, float]]:
    paths = {
        "GET /api/tasks": "/api/tasks", "GET /api/tasks/{id}": f"/api/tasks/{task_id}",
        "GET /api/tasks/{id}/rounds": f"/api/tasks/{task_id}/rounds",
        "GET /api/tasks/{id}/rounds/{r}": f"/api/tasks/{task_id}/rounds/{rounds // 2}",
        "GET /api/tasks/{id}/series": f"/api/tasks/{task_id}/series",
        "GET /api/accounts/{addr}": f"/api/accounts/{account}", "GET /tasks/{id} (page)": f"/tasks/{task_id}",
    }  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        for label, path in paths.items():
            client.get(path).raise_for_status()  # warm
            samples = []
            for _ in range(REQUESTS):
                started = time.perf_counter()
                client.get(path).raise_for_status()
                samples.append((time.perf_counter() - started) * 1000)
            out[label] = {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(percentile(samples, 0.95), 2)}
    return out


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    owners, rounds = (20, 10) if quick else (100, 50)
    console = Console()
    with LocalAnvil(accounts=owners + 2, balance_eth=1_000) as node, tempfile.TemporaryDirectory() as tmp:
        w3 = connect(node.rpc_url)
        sessions = [ChainSession(w3, key) for key in dev_accounts(owners + 2)]
        market, deployed = MarketplaceContract.deploy(sessions[0])
        started = time.perf_counter()
        task_id = drive_task(market, sessions, owners, rounds)
        drive_s = time.perf_counter() - started

        db_url = f"sqlite:///{tmp}/index.db"
        _, db = open_database(db_url)
        indexer = Indexer(w3, market.address, db, start_block=deployed.block_number)
        started = time.perf_counter()
        indexed = indexer.sync()
        index_s = time.perf_counter() - started
        with db() as session:
            stored = int(session.scalar(select(func.count()).select_from(EventRow)) or 0)
        settings = ServiceSettings(node.rpc_url, market.address, db_url=db_url, start_block=deployed.block_number)
        with running_service(settings) as running:
            latency = time_api(running.url, task_id, sessions[2].address, rounds)
        blocks = int(w3.eth.block_number) - deployed.block_number

    result = {
        "data_owners": owners, "rounds": rounds, "blocks": blocks, "events": indexed, "events_stored": stored,
        "drive_seconds": round(drive_s, 2), "index_seconds": round(index_s, 2),
        "events_per_second": round(indexed / index_s, 1), "api_requests_per_endpoint": REQUESTS, "api": latency,
        "database": "sqlite (file)", "quick": quick,
    }  # fmt: skip
    table = Table(title=f"indexer: {owners} data owners × {rounds} rounds, {indexed} events in {blocks} blocks")
    table.add_column("measure")
    table.add_column("p50", justify="right")
    table.add_column("p95", justify="right")
    table.add_row("index from scratch", f"{indexed / index_s:,.0f} events/s", f"{index_s:.1f} s total")
    for label, numbers in latency.items():
        table.add_row(label, f"{numbers['p50_ms']:.1f} ms", f"{numbers['p95_ms']:.1f} ms")
    console.print(table)
    if not quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        console.print(f"wrote {RESULTS}")
    else:
        console.print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
