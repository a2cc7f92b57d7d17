"""Layer-2 (Groth16 rules proof) figures: constraints, setup, prove time and peak memory vs (n, d), proof size,
verify time (groth16py and py_ecc) and on-chain verify gas. Writes a table and benchmarks/results/zk_groth16.json.

    .venv/bin/python benchmarks/zk_groth16.py                 # default sizes
    .venv/bin/python benchmarks/zk_groth16.py --sizes 3x16 10x256 --no-chain

Each size runs in its own process so peak memory (ru_maxrss) is per size. Keys are cached
(zk.groth16.keys), so a rerun skips setup; pass --fresh to time the setup again.
All keys here come from the single-party setup: UNSAFE for real money.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/zk.py would shadow the zk package when this file runs as a script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "zk_groth16.json"
DEFAULT_SIZES = ["3x16", "3x64", "10x256", "10x1024", "10x4096"]


def _capture_fd1(fn):  # type: ignore[no-untyped-def]
    """Run fn with file descriptor 1 redirected (circom prints its statistics there); returns (value, text)."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(tmp.fileno(), 1)
        try:
            value = fn()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        return value, tmp.read().decode(errors="replace")


def measure_one(n: int, d: int, fresh: bool) -> dict:
    from zk.auditor_groth16 import check_rules_proof
    from zk.groth16.keys import setup_keys
    from zk.groth16.prover import prove_round, verify_round
    from zk.groth16.rules import CircuitShape
    from zk.groth16.sample import sample_round
    from zk.groth16.solidity import verifying_key_json

    shape = CircuitShape(n, d)
    start = time.perf_counter()
    keys, text = _capture_fd1(lambda: setup_keys(shape, force=fresh))
    load_or_setup = time.perf_counter() - start
    match = re.search(r"non-linear constraints: (\d+)", text)
    meta = json.loads((keys.directory / "meta.json").read_text())
    constraints = int(match.group(1)) if match else meta.get("constraints")
    if match:
        meta["constraints"] = constraints
        (keys.directory / "meta.json").write_text(json.dumps(meta))
    rnd = sample_round(shape)
    result = prove_round(keys, rnd)
    start = time.perf_counter()
    ok = verify_round(keys, result.proof, result.witness.statement.weights)
    verify_fast = time.perf_counter() - start
    audit = check_rules_proof(verifying_key_json(keys), result.proof.to_bytes(), result.witness.statement.weights)
    pk_bytes = (keys.directory / "pk.bin").stat().st_size
    return {
        "n": n,
        "d": d,
        "value_bits": shape.value_bits,
        "constraints": constraints,
        "setup_s": round(meta.get("setup_seconds", 0.0), 2),
        "key_load_or_setup_s": round(load_or_setup, 2),
        "prove_s": round(result.seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "proving_key_mib": round(pk_bytes / 2**20, 1),
        "proof_bytes": len(result.proof.to_bytes()),
        "verify_groth16py_ms": round(verify_fast * 1000, 2),
        "verify_py_ecc_s": round(audit.seconds, 2),
        "verified": bool(ok and audit.passed),
        "key": keys.label,
    }


def measure_gas(n: int, d: int) -> dict:
    """Deploy on a fresh Anvil and measure the bare verifier and the two-layer adapter."""
    from marketplace.chain.anvil import LocalAnvil, dev_accounts
    from marketplace.chain.session import ChainSession, connect
    from zk.groth16.keys import setup_keys
    from zk.groth16.prover import prove_round
    from zk.groth16.rules import CircuitShape
    from zk.groth16.sample import sample_round
    from zk.groth16.solidity import deploy
    from zk.onchain import PedersenVerifier
    from zk.pedersen import aggregate_commitment, commit, random_blinding

    shape = CircuitShape(n, d)
    keys = setup_keys(shape)
    rnd = sample_round(shape)
    result = prove_round(keys, rnd)
    st = result.witness.statement
    commitments = [commit(row, random_blinding()) for row in rnd.q]
    model = aggregate_commitment(commitments, st.weights)
    with LocalAnvil(accounts=2) as node:
        session = ChainSession(connect(node.rpc_url, expected_chain_id=31337), dev_accounts(2)[0])
        pedersen, _ = PedersenVerifier.deploy(session)
        chain = deploy(session, keys, pedersen.address)
        bare_ok, bare_gas = chain.verify_proof(result.proof, st.public_hash)
        ok, gas = chain.verify_round(commitments, st.weights, model, result.proof.to_bytes())
        ped = pedersen.measure(commitments, st.weights, model)
    return {
        "groth16_verify_gas": bare_gas,
        "adapter_verify_round_gas": gas,
        "pedersen_only_gas": ped.gas,
        "onchain_ok": bool(bare_ok and ok),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=DEFAULT_SIZES, help="NxD entries")
    parser.add_argument("--fresh", action="store_true", help="redo the setup even if keys are cached")
    parser.add_argument("--no-chain", action="store_true", help="skip the on-chain gas measurement")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        n, d = (int(x) for x in args.one.split("x"))
        row = measure_one(n, d, args.fresh)
        if not args.no_chain:
            row |= measure_gas(n, d)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", size] + (["--fresh"] if args.fresh else [])
        cmd += ["--no-chain"] if args.no_chain else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{size}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(line[7:])
        rows = [r for r in rows if (r["n"], r["d"]) != (row["n"], row["d"])] + [row]
        rows.sort(key=lambda r: (r["n"], r["d"]))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"benchmark": "zk_groth16", "rule_version": "rffl-v1", "rows": rows}, indent=2))
        print(
            f"n={row['n']:>3} d={row['d']:>6} constraints={row['constraints']} setup={row['setup_s']}s "
            f"prove={row['prove_s']}s peak={row['peak_rss_mib']}MiB pk={row['proving_key_mib']}MiB "
            f"verify(groth16py)={row['verify_groth16py_ms']}ms verify(py_ecc)={row['verify_py_ecc_s']}s "
            f"gas(groth16)={row.get('groth16_verify_gas')} gas(both layers)={row.get('adapter_verify_round_gas')}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
