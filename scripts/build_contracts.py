"""Rebuild contracts/out/*.json from contracts/src with solcjs; `--check` fails if they are stale."""

from __future__ import annotations

import argparse
import json
import sys

from marketplace.chain.compiler import compile_contracts, write_artifacts
from marketplace.paths import ARTIFACTS_DIR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare with the committed artifacts, write nothing")
    args = parser.parse_args()
    artifacts = compile_contracts()
    if args.check:
        stale = [
            name
            for name, artifact in artifacts.items()
            if not (ARTIFACTS_DIR / f"{name}.json").exists()
            or json.loads((ARTIFACTS_DIR / f"{name}.json").read_text()) != artifact
        ]
        if stale:
            print(f"stale artifacts: {', '.join(sorted(stale))}; run `make contracts`", file=sys.stderr)
            return 1
        print(f"{len(artifacts)} artifacts up to date")
        return 0
    for path in write_artifacts(artifacts):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
