"""Layer-2 (Groth16 rules proof) figures: constraints, setup, prove time and peak memory vs (n, d), proof size,
verify time (groth16py and py_ecc) and on-chain verify gas. Writes a table and benchmarks/results/zk_groth16.json.

    .venv/bin/python benchmarks/zk_groth16.py                 # default sizes
    .venv/bin/python benchmarks/zk_groth16.py --sizes 3x16 10x256 --no-chain
    .venv/bin/python benchmarks/zk_groth16.py --rules rffl-v2 --sizes 3x16 10x4096   # + filter + link
    .venv/bin/python benchmarks/zk_groth16.py --rules rffl-v2 --projection 256 --sizes 10x100000  # SCALING Path 1
    .venv/bin/python benchmarks/zk_groth16.py --rules rffl-v3 --sizes 10x650 --fresh   # + norm filter (k = 2)
    .venv/bin/python benchmarks/zk_groth16.py --rules rffl-v4 --sizes 10x650 --fresh   # + missing score (-1/4)

Each size runs in its own process so peak memory (ru_maxrss) is per size. Keys are cached
(zk.groth16.keys), so a rerun skips setup; pass --fresh to time the setup again.
All keys here come from the single-party setup: UNSAFE for real money. Wall times depend on other load on
the machine, so CPU time is recorded next to them: this process's threads plus its children (the
Node witness computation runs in a child process).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/zk.py would shadow the zk package when this file runs as a script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "zk_groth16.json"
DEFAULT_SIZES = ["3x16", "3x64", "10x256", "10x1024", "10x4096"]


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children (Node witness runs)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _keys(shape, fresh: bool, spec=None) -> tuple:  # type: ignore[no-untyped-def]
    """(keys, figures): load the cached key or run the setup, with the constraint count circom reported."""
    from zk.groth16.keys import RULES_V1, setup_keys

    start, cpu0 = time.perf_counter(), _cpu()
    keys = setup_keys(shape, force=fresh, spec=spec or RULES_V1)  # circom's report goes to the key's compile.log
    figures = {"key_load_or_setup_s": round(time.perf_counter() - start, 2)}
    figures["key_load_or_setup_cpu_s"] = round(_cpu() - cpu0, 2)
    meta = json.loads((keys.directory / "meta.json").read_text())
    figures = {"constraints": meta.get("constraints"), "setup_s": round(meta.get("setup_seconds", 0.0), 2)} | figures
    return keys, figures


def _timed_prove(prove):  # type: ignore[no-untyped-def]
    """Run a prover; returns (result, cpu seconds including the Node witness child)."""
    cpu0 = _cpu()
    result = prove()
    return result, round(_cpu() - cpu0, 2)


def _proof_figures(keys, result, prove_cpu: float) -> dict:  # type: ignore[no-untyped-def]
    return {
        "prove_s": round(result.seconds, 2),
        "prove_and_witness_cpu_s": prove_cpu,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "proving_key_mib": round((keys.directory / "pk.bin").stat().st_size / 2**20, 1),
        "proof_bytes": len(result.proof.to_bytes()),
    }


def _chain_gas(keys, commitments, weights, model, proof, bare: tuple | None = None) -> dict:  # type: ignore[no-untyped-def]
    """Deploy the Pedersen verifier and Groth16 adapter on a fresh Anvil; gas of verifyRound (and the bare verifier)."""
    from marketplace.chain.anvil import LocalAnvil, dev_accounts
    from marketplace.chain.session import ChainSession, connect
    from zk.groth16.solidity import deploy
    from zk.onchain import PedersenVerifier

    with LocalAnvil(accounts=2) as node:
        session = ChainSession(connect(node.rpc_url, expected_chain_id=31337), dev_accounts(2)[0])
        pedersen, _ = PedersenVerifier.deploy(session)
        deployed = deploy(session, keys, pedersen.address)
        ok, gas = deployed.verify_round(commitments, weights, model, proof.to_bytes())
        row = {"adapter_verify_round_gas": gas, "onchain_ok": bool(ok)}
        if bare is not None:
            bare_ok, bare_gas = deployed.verify_proof(*bare)
            ped = pedersen.measure(commitments, weights, model)
            row |= {"groth16_verify_gas": bare_gas, "pedersen_only_gas": ped.gas, "onchain_ok": bool(ok and bare_ok)}
    return row


def measure_one(n: int, d: int, fresh: bool, chain: bool) -> dict:
    """Rule version rffl-v1: prove, verify (groth16py and py_ecc), gas of both layers."""
    from zk.auditor_groth16 import check_rules_proof
    from zk.groth16.prover import prove_round, verify_round
    from zk.groth16.rules import CircuitShape
    from zk.groth16.sample import sample_round
    from zk.groth16.solidity import verifying_key_json
    from zk.pedersen import aggregate_commitment, commit, random_blinding

    shape = CircuitShape(n, d)
    keys, figures = _keys(shape, fresh)
    rnd = sample_round(shape)
    result, prove_cpu = _timed_prove(lambda: prove_round(keys, rnd))
    st = result.witness.statement
    start = time.perf_counter()
    ok = verify_round(keys, result.proof, st.weights)
    verify_fast = time.perf_counter() - start
    audit = check_rules_proof(verifying_key_json(keys), result.proof.to_bytes(), st.weights)
    row = {"rules": "rffl-v1", "n": n, "d": d, "value_bits": shape.value_bits, **figures}
    row |= _proof_figures(keys, result, prove_cpu)
    row |= {
        "verify_groth16py_ms": round(verify_fast * 1000, 2),
        "verify_py_ecc_s": round(audit.seconds, 2),
        "verified": bool(ok and audit.passed),
        "key": keys.label,
    }
    if chain:
        commitments = [commit(q, random_blinding()) for q in rnd.q]
        model = aggregate_commitment(commitments, st.weights)
        row |= _chain_gas(keys, commitments, st.weights, model, result.proof, bare=(result.proof, st.public_hash))
    return row


def measure_one_v2(n: int, d: int, fresh: bool, value_bits: int, chain: bool, version: str = "rffl-v2") -> dict:
    """Rule version rffl-v2 (rules + proven cosine filter + Poseidon↔Pedersen link), rffl-v3 (+ the proven norm
    filter at k = 2, capped scores) or rffl-v4 (+ the missing score -1/4): prove, link proof, gas."""
    import dataclasses

    from aggregator.fixedpoint import ONE
    from marketplace.task_spec import CAPPED_VERSIONS
    from zk.auditor_groth16 import check_linked_rules_proof
    from zk.auditor_link import check_link
    from zk.groth16.linked import (
        LinkedRule,
        filter_decision,
        prove_link,
        prove_linked_round,
        public_hash_v2,
        verify_link,
    )
    from zk.groth16.rules import CircuitShape, build_witness
    from zk.groth16.sample import sample_round
    from zk.groth16.solidity import verifying_key_json
    from zk.pedersen import aggregate_commitment, commit, random_blinding

    shape = CircuitShape(n, d, value_bits)
    capped = version in CAPPED_VERSIONS
    rule = LinkedRule(version, ONE // 4, 4 * ONE if capped else 0, -ONE // 4 if version == "rffl-v4" else 0)
    keys, figures = _keys(shape, fresh, rule.spec)
    rnd = sample_round(shape)
    rnd = dataclasses.replace(rnd, kept=filter_decision(rnd, rule))
    blindings = [random_blinding() for _ in range(n)]
    commitments = [commit(row, b) for row, b in zip(rnd.q, blindings, strict=True)]
    witness = build_witness(shape, rnd, capped=rule.capped, missing_fp=rule.missing_fp)
    model = aggregate_commitment(commitments, witness.statement.weights)
    result, prove_cpu = _timed_prove(lambda: prove_linked_round(keys, rnd, commitments, model, rule))
    ls = result.witness.linked
    start = time.perf_counter()
    link = prove_link(list(rnd.q), blindings, commitments, rnd.submitted, ls.seed, ls.t)
    link_prove = time.perf_counter() - start
    start = time.perf_counter()
    link_ok = verify_link(commitments, rnd.submitted, ls.seed, ls.t, d, link)
    link_verify = time.perf_counter() - start
    audit_link = check_link(commitments, rnd.submitted, ls.seed, ls.t, link) if d <= 1024 else None
    audit = check_linked_rules_proof(
        verifying_key_json(keys), result.proof.to_bytes(), ls.weights, commitments, model, label=keys.label,
        version=version,
    )
    row = {"rules": version, "n": n, "d": d, "value_bits": value_bits, **figures}
    row |= _proof_figures(keys, result, prove_cpu)
    row |= {
        "link_proof_s": round(link_prove, 3),
        "link_verify_mcl_s": round(link_verify, 3),
        "link_verify_py_ecc_s": round(audit_link.seconds, 2) if audit_link else None,
        "link_proof_bytes": 32 * (d + 4),
        "verify_py_ecc_s": round(audit.seconds, 2),
        "verified": bool(link_ok and audit.passed and (audit_link is None or audit_link.passed)),
        "key": keys.label,
    }
    if chain:
        bare = (result.proof, public_hash_v2(ls.weights, ls.digest, ls.seed, ls.t))
        row |= _chain_gas(keys, commitments, ls.weights, model, result.proof, bare=bare)
    return row


def measure_projection(n: int, d: int, m: int, fresh: bool, chain: bool) -> dict:
    """Path 1 prototype: rffl-v2 on y_i = P·u_i (m coordinates), linked to Pedersen commitments of the full u_i."""
    import dataclasses
    import math

    from aggregator.fixedpoint import ONE
    from zk.auditor_groth16 import check_linked_rules_proof
    from zk.generators import load_generators
    from zk.groth16.keys import RULES_V2
    from zk.groth16.linked import filter_decision, prove_link, prove_linked_round, verify_link
    from zk.groth16.projection import (
        project,
        projected_value_bits,
        projection_matrix,
        projection_seed,
    )
    from zk.groth16.rules import CircuitShape, build_witness
    from zk.groth16.sample import sample_round
    from zk.groth16.solidity import verifying_key_json
    from zk.pedersen import aggregate_commitment, commit, random_blinding

    timings: dict[str, float] = {}

    def timed(name: str, fn):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - start, 3)
        return value

    full = sample_round(CircuitShape(n, d))
    gens = timed("generators_load_s", lambda: load_generators(d))
    blindings = [random_blinding() for _ in range(n)]
    commitments = timed(
        "pedersen_commit_all_s",
        lambda: [commit(row, b, generators=gens) for row, b in zip(full.q, blindings, strict=True)],
    )
    matrix = timed("projection_matrix_s", lambda: projection_matrix(projection_seed(commitments), m, d))
    y = timed("project_s", lambda: project(full.q, matrix))
    vb = projected_value_bits(16, d)
    shape = CircuitShape(n, m, vb)
    tau = ONE // 4
    rnd = dataclasses.replace(full, q=y, gamma_q=int(full.gamma_q * math.isqrt(m // 2)) + 1)
    rnd = dataclasses.replace(rnd, kept=filter_decision(rnd, tau))
    keys, figures = _keys(shape, fresh, RULES_V2)
    weights = build_witness(shape, rnd).statement.weights
    model = aggregate_commitment(commitments, weights)
    result, prove_cpu = _timed_prove(lambda: prove_linked_round(keys, rnd, commitments, model, tau))
    ls = result.witness.linked
    link = timed(
        "link_proof_s",
        lambda: prove_link(list(full.q), blindings, commitments, rnd.submitted, ls.seed, ls.t, projection=matrix),
    )
    link_ok = timed(
        "link_verify_mcl_s",
        lambda: verify_link(commitments, rnd.submitted, ls.seed, ls.t, d, link, projection=matrix),
    )
    audit = check_linked_rules_proof(verifying_key_json(keys), result.proof.to_bytes(), ls.weights, commitments, model)
    row = {"rules": f"rffl-v2-proj{m}", "n": n, "d": d, "m": m, "value_bits": vb, **figures}
    row |= _proof_figures(keys, result, prove_cpu)
    row |= {
        "link_proof_bytes": 32 * (d + 4),
        **timings,
        "verify_py_ecc_s": round(audit.seconds, 2),
        "verified": bool(link_ok and audit.passed),
        "key": keys.label,
    }
    if chain:
        row |= _chain_gas(keys, commitments, ls.weights, model, result.proof)
    return row


def main() -> int:
    from marketplace.task_spec import RULE_VERSIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=DEFAULT_SIZES, help="NxD entries")
    parser.add_argument("--fresh", action="store_true", help="redo the setup even if keys are cached")
    parser.add_argument("--no-chain", action="store_true", help="skip the on-chain gas measurement")
    parser.add_argument("--rules", choices=RULE_VERSIONS, default="rffl-v1", help="rule version")
    parser.add_argument("--value-bits", type=int, default=16, help="|q| < 2^value_bits (rffl-v2 to v4 only)")
    parser.add_argument("--projection", type=int, default=0, help="rffl-v2 on an m-row random projection (m)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one and args.projection:
        n, d = (int(x) for x in args.one.split("x"))
        row = measure_projection(n, d, args.projection, args.fresh, not args.no_chain)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    if args.one and args.rules != "rffl-v1":
        n, d = (int(x) for x in args.one.split("x"))
        row = measure_one_v2(n, d, args.fresh, args.value_bits, not args.no_chain, args.rules)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    if args.one:
        n, d = (int(x) for x in args.one.split("x"))
        row = measure_one(n, d, args.fresh, not args.no_chain)
        print("RESULT " + json.dumps(row), flush=True)
        return 0
    rows = json.loads(RESULTS.read_text())["rows"] if RESULTS.exists() else []
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", size, "--rules", args.rules, "--value-bits", str(args.value_bits)]
        cmd += ["--fresh"] if args.fresh else []
        cmd += ["--projection", str(args.projection)] if args.projection else []
        cmd += ["--no-chain"] if args.no_chain else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{size}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        row = json.loads(line[7:])
        row.setdefault("rules", "rffl-v1")

        def ident(r: dict) -> tuple:
            return (r.get("rules", "rffl-v1"), r["n"], r["d"], r.get("value_bits", 16), r.get("m", 0))

        rows = [r for r in rows if ident(r) != ident(row)] + [row]
        rows.sort(key=ident)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        note = json.loads(RESULTS.read_text()).get("note", "") if RESULTS.exists() else ""
        payload = {"benchmark": "zk_groth16", "rule_versions": list(RULE_VERSIONS), "rows": rows, "note": note}
        RESULTS.write_text(json.dumps(payload, indent=2))
        keys = ("constraints", "setup_s", "prove_s", "prove_and_witness_cpu_s", "peak_rss_mib", "proving_key_mib")
        keys += ("link_proof_s", "link_verify_mcl_s", "verify_py_ecc_s", "groth16_verify_gas")
        keys += ("adapter_verify_round_gas",)
        stats = " ".join(f"{k}={row[k]}" for k in keys if row.get(k) is not None)
        print(f"{row['rules']} n={row['n']} d={row['d']} vb={row.get('value_bits', 16)} {stats}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
