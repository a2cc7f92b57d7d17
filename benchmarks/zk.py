"""Layer-1 ZK benchmark: Pedersen commitments, on-chain aggregation check, auditor verification.

Figures (issue 4): commit time vs d (10^3..10^6) and per-parameter cost against zkFL's
reported client commitment time (ResNet18, 11M parameters: 10–20 min per round); gas of
PedersenAggregationVerifier.verifyRound vs the number of data owners n on a real Anvil
chain; off-chain auditor time (py_ecc, independent, vs the mcl fast path). Prints tables
and writes benchmarks/results/zk.json. Wall times depend on other load on the machine, so
CPU time (this process, all threads) is reported next to them.

    python benchmarks/zk.py            # d up to 10^6 (derives 10^6 generators once, ~1 min, then cached)
    python benchmarks/zk.py --quick    # d up to 10^5, fewer gas points
    python benchmarks/zk.py --link-only  # only the rffl-v2 Poseidon↔Pedersen link (Σ-proof) vs d, merged in
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from marketplace.chain.anvil import LocalAnvil, dev_accounts  # noqa: E402
from marketplace.chain.session import ChainSession, connect  # noqa: E402
from zk import auditor, generators, pedersen  # noqa: E402
from zk.onchain import PedersenVerifier  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "zk.json"
ZKFL_PARAMS = 11_000_000  # ResNet18 as zkFL reports it
ZKFL_SECONDS = (600.0, 1200.0)  # 10–20 min of client commitment per round
QUANT_BITS = 16  # signed 16-bit quantized updates: |u| < 2^15
SEED = 20240


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """Best wall time and its CPU time over `repeat` runs, and the last result."""
    best: tuple[float, float] | None = None
    result = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        sample = (time.perf_counter() - wall, time.process_time() - cpu)
        best = sample if best is None or sample[0] < best[0] else best
    assert best is not None
    return best[0], best[1], result


def bench_generators(cold_d: int) -> dict[str, Any]:
    """Hash-to-curve cost on a cold cache (a temporary directory)."""
    with tempfile.TemporaryDirectory() as tmp:
        generators.forget_in_memory()
        wall, cpu, _ = timed(lambda: generators.load_generators(cold_d, cache=tmp))
        generators.forget_in_memory()
        load_wall, _, _ = timed(lambda: generators.load_generators(cold_d, cache=tmp))
    generators.forget_in_memory()
    return {
        "d": cold_d,
        "derive_s": wall,
        "derive_cpu_s": cpu,
        "us_per_generator": 1e6 * wall / cold_d,
        "load_from_disk_s": load_wall,
        "processes": len(os.sched_getaffinity(0)),
    }


def bench_commit(sizes: list[int]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(SEED)
    rows = []
    for d in sizes:
        prepare_wall, _, gens = timed(lambda d=d: generators.load_generators(d))
        values = rng.integers(-(2 ** (QUANT_BITS - 1)) + 1, 2 ** (QUANT_BITS - 1), size=d, dtype=np.int64)
        rho = pedersen.random_blinding()
        pedersen.commit(values[: min(d, 1000)], rho, generators=gens)  # warm the Montgomery tables
        wall, cpu, _ = timed(lambda v=values, g=gens, r=rho: pedersen.commit(v, r, generators=g), repeat=3)
        single_wall, _, _ = timed(lambda v=values, g=gens, r=rho: _commit_one_thread(v, r, g), repeat=2)
        rows.append(
            {
                "d": d,
                "generators_ready_s": prepare_wall,
                "commit_s": wall,
                "commit_cpu_s": cpu,
                "us_per_param": 1e6 * wall / d,
                "commit_one_thread_s": single_wall,
                "us_per_param_one_thread": 1e6 * single_wall / d,
                "cpu_us_per_param": 1e6 * cpu / d,
            }
        )
        print(f"  commit d={d:>9,}: {wall:.3f} s ({1e6 * wall / d:.3f} µs/param; 1 thread {single_wall:.3f} s)")
    return rows


def _commit_one_thread(values: np.ndarray, rho: int, gens: generators.Generators) -> tuple[int, int]:
    from zk import mcl

    original = mcl._cpu_count
    mcl._cpu_count = lambda: 1  # type: ignore[assignment]
    try:
        return pedersen.commit(values, rho, generators=gens)
    finally:
        mcl._cpu_count = original  # type: ignore[assignment]


def zkfl_comparison(commit_rows: list[dict[str, Any]]) -> dict[str, Any]:
    largest = max(commit_rows, key=lambda r: r["d"])
    ours = {"all cores": largest["us_per_param"], "one thread": largest["us_per_param_one_thread"]}
    zkfl = [1e6 * s / ZKFL_PARAMS for s in ZKFL_SECONDS]
    return {
        "zkfl_us_per_param": zkfl,
        "ours_d": largest["d"],
        "ours_us_per_param": ours,
        "ratio_vs_zkfl_10min": {k: zkfl[0] / v for k, v in ours.items()},
        "ratio_vs_zkfl_20min": {k: zkfl[1] / v for k, v in ours.items()},
        "resnet18_round_s_extrapolated": {k: v * ZKFL_PARAMS / 1e6 for k, v in ours.items()},
    }


def _round(n: int, d: int, gens: generators.Generators, rng: np.random.Generator) -> dict[str, Any]:
    updates = [rng.integers(-(2**15), 2**15, size=d) for _ in range(n)]
    blindings = [pedersen.random_blinding() for _ in range(n)]
    weights = [int(w) for w in rng.integers(1, 2**20, size=n)]
    commitments = [pedersen.commit(u, b, generators=gens) for u, b in zip(updates, blindings, strict=True)]
    model = pedersen.aggregate_commitment(commitments, weights)
    return {"updates": updates, "blindings": blindings, "weights": weights, "commitments": commitments, "model": model}


def bench_gas(ns: list[int]) -> list[dict[str, Any]]:
    d = 16  # gas does not depend on d: only the n points and weights reach the chain
    gens = generators.load_generators(d)
    rng = np.random.default_rng(SEED + 1)
    rows = []
    with LocalAnvil(accounts=2) as node:
        session = ChainSession(connect(node.rpc_url), dev_accounts(1)[0])
        verifier, deploy_gas = PedersenVerifier.deploy(session)
        for n in ns:
            data = _round(n, d, gens, rng)
            call = verifier.measure(data["commitments"], data["weights"], data["model"])
            assert call.valid, f"honest round rejected at n={n}"
            calldata = 4 + 32 * (3 + 2 * n + 1 + n + 2 + 1)  # selector, offsets, arrays, model, empty bytes
            rows.append(
                {
                    "n": n,
                    "tx_gas": call.gas,
                    "execution_gas": call.execution_gas,
                    "per_owner_gas": call.gas / n,
                    "calldata_bytes": calldata,
                    "deploy_gas": deploy_gas,
                }
            )
            print(f"  verifyRound n={n:>3}: {call.gas:,} gas")
    return rows


def bench_auditor(sizes: list[int], ns: list[int]) -> dict[str, Any]:
    rng = np.random.default_rng(SEED + 2)
    aggregation = []
    for n in ns:
        data = _round(n, 16, generators.load_generators(16), rng)
        py_wall, _, check = timed(
            lambda data=data: auditor.check_aggregation(data["commitments"], data["weights"], data["model"])
        )
        assert check.passed
        fast_wall, _, _ = timed(lambda data=data: pedersen.aggregate_commitment(data["commitments"], data["weights"]))
        aggregation.append({"n": n, "py_ecc_s": py_wall, "mcl_s": fast_wall})
        print(f"  auditor Σ w_i·C_i n={n:>3}: py_ecc {py_wall:.3f} s, mcl {fast_wall * 1e3:.2f} ms")
    opening = []
    for d in sizes:
        gens = generators.load_generators(d)
        values = rng.integers(-(2**15), 2**15, size=d) * 300  # an aggregate: Σ w_i·u_i with Σ w_i ≈ 300
        rho = pedersen.random_blinding()
        model = pedersen.commit(values, rho, generators=gens)
        py_wall, _, check = timed(lambda v=values, m=model, r=rho: auditor.open_model(v, r, m, method="py_ecc"))
        assert check.passed
        fast_wall, _, fast = timed(
            lambda v=values, m=model, r=rho: auditor.open_model(v, r, m, method="fast"), repeat=2
        )
        assert fast.passed
        sample_wall, _, gcheck = timed(lambda d=d: auditor.check_generators(d, sample=64, seed=1))
        assert gcheck.passed
        opening.append(
            {
                "d": d,
                "py_ecc_s": py_wall,
                "py_ecc_us_per_param": 1e6 * py_wall / d,
                "fast_mcl_s": fast_wall,
                "generator_sample_check_s": sample_wall,
            }
        )
        print(f"  auditor opening d={d:>9,}: py_ecc {py_wall:.2f} s, mcl fast path {fast_wall:.3f} s")
    return {"aggregation": aggregation, "opening": opening}


def bench_link(sizes: list[int], n: int, py_ecc_max_d: int) -> list[dict[str, Any]]:
    """The rffl-v2 Poseidon↔Pedersen link, Pedersen side (zk.groth16.linked): Σ-proof prove/verify vs d."""
    from zk.auditor_link import check_link
    from zk.groth16.linked import link_value, prove_link, verify_link

    rng = np.random.default_rng(SEED)
    rows = []
    for d in sizes:
        gens = generators.load_generators(d)
        u = rng.integers(-(2 ** (QUANT_BITS - 1)), 2 ** (QUANT_BITS - 1), size=(n, d))
        rho = [pedersen.random_blinding() for _ in range(n)]
        cs = [pedersen.commit(row, r, generators=gens) for row, r in zip(u, rho, strict=True)]
        submitted = [True] * n
        seed = int(rng.integers(1, 2**62))
        t = link_value(u, submitted, seed)
        wall, cpu, proof = timed(lambda: prove_link(list(u), rho, cs, submitted, seed, t))  # noqa: B023
        v_wall, v_cpu, ok = timed(lambda: verify_link(cs, submitted, seed, t, d, proof))  # noqa: B023
        row: dict[str, Any] = {
            "n": n,
            "d": d,
            "prove_s": round(wall, 3),
            "prove_cpu_s": round(cpu, 3),
            "verify_mcl_s": round(v_wall, 3),
            "verify_mcl_cpu_s": round(v_cpu, 3),
            "proof_bytes": 32 * (d + 4),
            "verified": bool(ok),
        }
        if d <= py_ecc_max_d:
            audit = check_link(cs, submitted, seed, t, proof, generators=gens)
            row |= {"verify_py_ecc_s": round(audit.seconds, 2), "verified": bool(ok and audit.passed)}
        rows.append(row)
        print(f"  link d={d:,}: prove {wall:.2f} s, verify (mcl) {v_wall:.2f} s", flush=True)
    return rows


def print_tables(result: dict[str, Any]) -> None:
    print("\nPedersen commitment (BN254, mcl MSM, signed 16-bit values)")
    print(f"{'d':>10} {'commit s':>9} {'µs/param':>9} {'1-thread s':>11} {'cpu µs/param':>13}")
    for r in result["commit"]:
        print(
            f"{r['d']:>10,} {r['commit_s']:>9.3f} {r['us_per_param']:>9.3f} "
            f"{r['commit_one_thread_s']:>11.3f} {r['cpu_us_per_param']:>13.3f}"
        )
    g = result["generators"]
    print(
        f"hash-to-curve, cold cache: {g['d']:,} generators in {g['derive_s']:.1f} s "
        f"({g['us_per_generator']:.1f} µs each, {g['processes']} processes); reload {g['load_from_disk_s']:.2f} s"
    )
    z = result["zkfl"]
    print(
        "\nvs zkFL (ResNet18, 11M params, 10–20 min/round = "
        f"{z['zkfl_us_per_param'][0]:.1f}–{z['zkfl_us_per_param'][1]:.1f} µs/param)"
    )
    for k, v in z["ours_us_per_param"].items():
        print(
            f"  ours ({k}): {v:.3f} µs/param → {z['ratio_vs_zkfl_10min'][k]:.0f}×–{z['ratio_vs_zkfl_20min'][k]:.0f}× "
            f"lower; ResNet18 round ≈ {z['resnet18_round_s_extrapolated'][k]:.1f} s"
        )
    print("\nOn-chain verifyRound (Anvil, EIP-196 precompiles)")
    print(f"{'n':>5} {'tx gas':>10} {'exec gas':>10} {'gas/owner':>10}")
    for r in result["gas"]:
        print(f"{r['n']:>5} {r['tx_gas']:>10,} {r['execution_gas']:>10,} {r['per_owner_gas']:>10,.0f}")
    print("\nAuditor (py_ecc, independent) vs fast path (mcl)")
    for r in result["auditor"]["aggregation"]:
        print(f"  Σ w_i·C_i, n={r['n']:>3}: py_ecc {r['py_ecc_s']:.3f} s | mcl {r['mcl_s'] * 1e3:.2f} ms")
    for r in result["auditor"]["opening"]:
        print(
            f"  opening d={r['d']:>9,}: py_ecc {r['py_ecc_s']:.2f} s ({r['py_ecc_us_per_param']:.1f} µs/param) | "
            f"mcl {r['fast_mcl_s']:.3f} s | generator sample check {r['generator_sample_check_s']:.2f} s"
        )
    if result.get("link"):
        print("\nPoseidon↔Pedersen link, Pedersen side (rffl-v2 Σ-proof, n owners)")
        print(f"{'n':>4} {'d':>9} {'prove s':>8} {'verify mcl s':>13} {'py_ecc s':>9} {'proof KiB':>10}")
        for r in result["link"]:
            py = r.get("verify_py_ecc_s")
            print(
                f"{r['n']:>4} {r['d']:>9,} {r['prove_s']:>8.3f} {r['verify_mcl_s']:>13.3f} "
                f"{'-' if py is None else f'{py:.2f}':>9} {r['proof_bytes'] / 1024:>10.1f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="d up to 10^5 and fewer gas points")
    parser.add_argument("--link-only", action="store_true", help="only the rffl-v2 link; merge into the JSON")
    args = parser.parse_args()
    if args.link_only:
        result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        print("link (Σ-proof)…")
        result["link"] = bench_link([10**3, 10**4, 10**5], 10, 10**3)
        if "commit" in result:
            print_tables(result)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {RESULTS}")
        return 0
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    ns = [5, 10, 20] if args.quick else [5, 10, 20, 50, 100]
    opening_sizes = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5, 10**6]
    print("generators (cold cache)…")
    result: dict[str, Any] = {"generators": bench_generators(10**4 if args.quick else 10**5)}
    print("commitments…")
    result["commit"] = bench_commit(sizes)
    result["zkfl"] = zkfl_comparison(result["commit"])
    print("gas…")
    result["gas"] = bench_gas(ns)
    print("auditor…")
    result["auditor"] = bench_auditor(opening_sizes, [10, 100])
    print("link (Σ-proof)…")
    result["link"] = bench_link([10**3, 10**4, 10**5], 10, 10**3)
    result["machine"] = {
        "cpus": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_average_at_end": os.getloadavg(),
        "quick": args.quick,
    }
    print_tables(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
