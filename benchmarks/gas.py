"""Gas of every Marketplace call for n = 5, 20 and 100 data owners, on a fresh local Anvil chain.

Each n runs one verified task (the WeightSumVerifier test verifier, standing in for the ZK verifier, so the
figures include the verifier call's overhead but not Groth16) through its whole life: publish, bond, join,
start, submit, finalize, challenge, resolve, settle, withdraw; and the same finalize on an unverified task.
Prints a table, checks the targets (submitUpdate <= 100k, withdraw <= 60k, finalize <= 300k + 12k n) and
writes benchmarks/results/gas.json.

    python benchmarks/gas.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from contracts.harness import DISPUTE, STAKE, SUBMISSION, Harness  # noqa: E402

from marketplace.chain.anvil import LocalAnvil, advance_time, dev_accounts  # noqa: E402
from marketplace.chain.erc20 import Erc20  # noqa: E402
from marketplace.chain.session import connect  # noqa: E402

SIZES = (5, 20, 100)
RESULTS = ROOT / "benchmarks" / "results" / "gas.json"


def finalize_target(n: int) -> int:
    return 300_000 + 12_000 * n


def measure(h: Harness, n: int) -> dict[str, Any]:
    """One task with n data owners, every call type once (per-owner calls: mean and max over the owners)."""
    gas: dict[str, list[int]] = {}

    def record(name: str, result: Any) -> Any:
        gas.setdefault(name, []).append(result.gas_used)
        return result

    owner, aggregator = h.as_(h.owner), h.as_(h.aggregator)
    terms = h.terms(max_data_owners=n, rounds=2)
    _, created = owner.create_task(terms, "bafkreispecspecspecspecspecspecspecspecspecspecspecspecsp", "bafymodel0")
    record("createTask", created)
    task_id = created.events[0].task_id
    record("postBond", aggregator.post_bond(task_id, terms.aggregator_bond))
    for i in h.data_owners:
        record("join", h.as_(i).join(task_id, STAKE))
    record("startTask", owner.start_task(task_id))

    cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
    for round_ in (1, 2):
        for k, i in enumerate(h.data_owners):
            point = (1, 2)
            content_hash = bytes([k % 256 or 1]) * 32
            record("submitUpdate", h.as_(i).submit_update(task_id, round_, cid, content_hash, point, k + 1))
        contributions = tuple(1000 + 37 * k for k in range(n))
        report = h.report(task_id, round_, contributions, model_cid=cid)
        record("finalizeRound", aggregator.finalize_round(task_id, round_, report))
        if round_ == 1:
            record("challengeRound", h.as_(h.stranger).challenge_round(task_id, 1, cid, terms.challenge_bond))
            record("resolveDispute (rejected)", h.as_(h.arbiter).resolve_dispute(task_id, 1, False))
    advance_time(h.w3, DISPUTE)
    for round_ in (1, 2):
        record("settleRound", h.market.settle_round(task_id, round_, tuple(1000 + 37 * k for k in range(n))))
    for i in h.data_owners:
        record("withdraw (data owner)", h.as_(i).withdraw(task_id))
    record("withdraw (owner)", owner.withdraw(task_id))
    record("withdraw (aggregator)", aggregator.withdraw(task_id))

    # the same round on an unverified task: the verifier call's share of finalize
    loose = h.started(max_data_owners=n, rounds=1, unverified=True, verifier="0x" + "00" * 20, aggregator_bond=0)
    for k, i in enumerate(h.data_owners):
        h.as_(i).submit_update(task_id=loose, round_=1, update_cid=cid, content_hash=b"\x01" * 32, commitment=(1, 2),
                               poseidon=k + 1)  # fmt: skip
    report = h.report(loose, 1, tuple(1 for _ in range(n)), model_cid=cid)
    record("finalizeRound (unverified)", aggregator.finalize_round(loose, 1, report))
    advance_time(h.w3, SUBMISSION)

    # an ERC-20 withdrawal to an account that already holds the token
    token = Erc20.deploy(h.session(h.owner))
    h.fund(token, h.owner, terms.reward)
    erc = h.create(token=token.address, max_data_owners=n, rounds=1, aggregator_bond=0, dispute_window=0)
    first = h.data_owners[0]
    h.fund(token, first, STAKE + 1)
    h.as_(first).join(erc, 0)
    owner.start_task(erc)
    h.as_(first).submit_update(erc, 1, cid, b"\x01" * 32, (1, 2), 1)
    advance_time(h.w3, SUBMISSION + 1)
    aggregator.finalize_round(erc, 1, h.report(erc, 1, (1,), model_cid=cid))
    h.market.settle_round(erc, 1, (1,))
    record("withdraw (data owner, ERC-20)", h.as_(first).withdraw(erc))
    return {name: {"mean": sum(v) // len(v), "max": max(v), "count": len(v)} for name, v in gas.items()}


def main() -> int:
    results: dict[str, Any] = {"sizes": list(SIZES), "calls": {}, "targets": {}}
    for n in SIZES:
        with LocalAnvil(accounts=n + 10) as chain:
            w3 = connect(chain.rpc_url, expected_chain_id=31337)
            h = Harness.deploy(w3, dev_accounts(n + 10), data_owners=tuple(range(4, 4 + n)))
            for name, figures in measure(h, n).items():
                results["calls"].setdefault(name, {})[str(n)] = figures
        print(f"n = {n}: done", file=sys.stderr)

    calls = results["calls"]
    names = list(calls)
    header = f"{'call':32}" + "".join(f"{'n=' + str(n):>14}" for n in SIZES)
    print(header)
    print("-" * len(header))
    for name in names:
        print(f"{name:32}" + "".join(f"{calls[name][str(n)]['max']:>14,}" for n in SIZES))
    verified = [calls["finalizeRound"][str(n)]["max"] for n in SIZES]
    slope = (verified[-1] - verified[0]) / (SIZES[-1] - SIZES[0])
    unverified = [calls["finalizeRound (unverified)"][str(n)]["max"] for n in SIZES]
    slope_unverified = (unverified[-1] - unverified[0]) / (SIZES[-1] - SIZES[0])
    print(f"\nfinalizeRound grows by {slope:,.0f} gas per data owner ({slope_unverified:,.0f} without the verifier)")

    checks = {
        "submitUpdate <= 100k": all(calls["submitUpdate"][str(n)]["max"] <= 100_000 for n in SIZES),
        "withdraw <= 60k (ETH)": all(
            calls[k][str(n)]["max"] <= 60_000
            for n in SIZES
            for k in ("withdraw (data owner)", "withdraw (owner)", "withdraw (aggregator)")
        ),
        "finalizeRound <= 300k + 12k n": all(v <= finalize_target(n) for v, n in zip(verified, SIZES, strict=True)),
    }
    results["targets"] = checks
    results["finalize_gas_per_data_owner"] = round(slope)
    results["finalize_gas_per_data_owner_unverified"] = round(slope_unverified)
    for label, ok in checks.items():
        print(f"{'met ' if ok else 'MISSED'} {label}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
