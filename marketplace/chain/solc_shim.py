"""A `solc` command line backed by solcjs, for tools that expect the native compiler (e.g. slither).

Speaks the two calls those tools make: `solc --version` and `solc --standard-json` (input on stdin, output
on stdout). Source entries given as `urls` are read from disk first, because solcjs only sees `content`.
Point a tool at it with a one-line script: `exec python -m marketplace.chain.solc_shim "$@"`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from marketplace.chain.compiler import DRIVER, NODE_MODULES
from marketplace.paths import CONTRACTS_DIR


def _solcjs_version() -> str:
    package = json.loads((NODE_MODULES / "solc" / "package.json").read_text())
    return str(package["version"])


def _inline_urls(payload: dict[str, object]) -> None:
    sources = payload.get("sources", {})
    assert isinstance(sources, dict)
    for name, entry in sources.items():
        if "content" not in entry and entry.get("urls"):
            entry["content"] = Path(entry.pop("urls")[0]).read_text()
            sources[name] = entry


def main(argv: list[str]) -> int:
    if "--version" in argv:
        print(f"solc, the solidity compiler commandline interface\nVersion: {_solcjs_version()}+commit.solcjs")
        return 0
    if "--standard-json" not in argv:
        print("this shim only supports --version and --standard-json", file=sys.stderr)
        return 2
    payload = json.loads(sys.stdin.read())
    _inline_urls(payload)
    with tempfile.TemporaryDirectory(prefix="fedmarket-solc-shim-") as tmp:
        input_path, output_path = Path(tmp) / "in.json", Path(tmp) / "out.json"
        input_path.write_text(json.dumps(payload))
        search = [str(Path.cwd()), str(CONTRACTS_DIR), str(NODE_MODULES)]
        proc = subprocess.run(["node", str(DRIVER), str(input_path), str(output_path), *search], check=False)
        if proc.returncode != 0:
            return proc.returncode
        sys.stdout.write(output_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
