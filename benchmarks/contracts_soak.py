"""Long soak of the Marketplace state machine: many more random call sequences than CI runs.

Starts its own Anvil, runs the hypothesis RuleBasedStateMachine of tests/integration/contracts/fuzz.py with a
large step budget, and prints the steps, transactions, time and the calls and reverts it reached.

    python benchmarks/contracts_soak.py --examples 200 --steps 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from contracts.fuzz import World  # noqa: E402
from test_contract_fuzz import run_fuzz  # noqa: E402

from marketplace.chain.anvil import LocalAnvil, dev_accounts  # noqa: E402
from marketplace.chain.session import connect  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "contracts_soak.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="hypothesis examples (fresh chain state each)")
    parser.add_argument("--steps", type=int, default=100, help="most steps per example")
    args = parser.parse_args()
    with LocalAnvil(accounts=12) as chain:
        w3 = connect(chain.rpc_url, expected_chain_id=31337)
        world = World.build(w3, dev_accounts(12))
        started = time.perf_counter()
        run_fuzz(world, args.examples, args.steps)
        seconds = time.perf_counter() - started
    stats = world.stats
    summary = {
        "examples": stats.examples,
        "steps": stats.steps,
        "transactions": stats.calls,
        "seconds": round(seconds, 1),
        "successes": dict(sorted(stats.successes.items())),
        "reverts": dict(sorted(stats.reverts.items())),
    }
    print(json.dumps(summary, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
