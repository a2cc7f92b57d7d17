"""Compile the rules circuit with circom 2 and compute witnesses under Node; prove with groth16py.

Why not groth16py alone: `groth16py.prove` runs the circuit's witness program under wasmi, a
WebAssembly *interpreter*. At n = 10, d = 1024 that is about half of the proving time; Node's
V8 compiles the same `.wasm` to machine code and computes the witness in about a second. So the
prover computes the witness with snarkjs (`wtns calculate`) and hands the `.wtns` file to
`groth16py.prove_wtns`, which only does the multi-scalar multiplications and FFTs.

Where the `.wasm` comes from: groth16py's proving key carries the witness program it was
compiled with (setup_circom and import_zkey both compile in-process), stored as a length-
prefixed WebAssembly module. `ensure_wasm` copies that exact module out once per key
(`circuit.wasm` next to pk.bin) after checking that its sections parse to exactly the declared
length, so the Node witness has the key's own wire layout by construction (checked byte for
byte against a separate circom2 `--O2` compile at n = 10, d = 1024). Any failure (no Node, no
module found, a witness the key refuses) falls back to `groth16py.prove`, and every proof is
verified before it leaves the prover, so the fast path can cost time but never correctness.

`compile_circuit` runs the `circom2` npm compiler (circom 2.2.x built to WASI) for what the key
does not hold: the `.r1cs` a snarkjs multi-party ceremony starts from (zk/CEREMONY.md). It sees
only its working directory, so it stages the circuit sources and circomlib under a temporary
directory and includes them by relative path.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import groth16py

from marketplace.paths import PROJECT_ROOT

NODE_MODULES = PROJECT_ROOT / "node_modules"
CIRCOM2_CLI = NODE_MODULES / "circom2" / "cli.js"
SNARKJS_CLI = NODE_MODULES / "snarkjs" / "build" / "cli.cjs"
WASM_NAME = "circuit.wasm"
R1CS_NAME = "circuit.r1cs"
_LOG = logging.getLogger(__name__)
#: Below this proving-key size wasmi's witness is faster than starting Node (~1 s): measured 1.7 s
#: (wasmi) vs 3.3 s (Node) at n = 3, d = 16 (34 MiB key), 25.8 s vs 12.4 s at n = 10, d = 1024 (356 MiB).
NODE_WITNESS_MIN_KEY_BYTES = 64 << 20


class CircuitToolError(RuntimeError):
    """circom2 or snarkjs is missing or failed; the message carries the tool's own output."""


@dataclass(frozen=True)
class CompiledCircuit:
    """Files one compile produced: the witness program and, when asked for, the constraint system."""

    wasm: Path
    r1cs: Path | None
    seconds: float


def node_tools_available() -> bool:
    """True when Node, circom2 and snarkjs are installed (scripts/setup.sh installs all three)."""
    return shutil.which("node") is not None and CIRCOM2_CLI.exists() and SNARKJS_CLI.exists()


def _tail(output: str) -> str:
    return "\n".join(output.strip().splitlines()[-15:])


def _run(command: list[str], cwd: Path, what: str) -> str:
    """Run a tool, returning its stdout + stderr; a missing tool or a non-zero exit is a CircuitToolError."""
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise CircuitToolError(f"{what}: {exc.filename} not found; run scripts/setup.sh") from exc
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise CircuitToolError(f"{what} failed (exit {proc.returncode}):\n{_tail(output)}")
    return output


def run_snarkjs(args: Sequence[str], cwd: Path, what: str) -> str:
    """Run the installed snarkjs CLI under Node, returning its output. snarkjs reports some failures (e.g. a
    zkey that does not verify) on stdout with exit code 0, so [ERROR] or INVALID in the output fails too."""
    if not SNARKJS_CLI.exists():
        raise CircuitToolError(f"snarkjs is not installed ({SNARKJS_CLI}); run scripts/setup.sh")
    output = _run(["node", str(SNARKJS_CLI), *args], cwd, f"snarkjs {what}")
    if re.search(r"\[ERROR\]|INVALID", output):
        raise CircuitToolError(f"snarkjs {what} failed:\n{_tail(output)}")
    return output


def _stage_sources(build: Path, circuit_dir: Path) -> None:
    """Copy the project's circuits and circomlib 2 under `build` (circom2's WASI sandbox sees nothing else)."""
    (build / "circuits").mkdir()
    for source in circuit_dir.glob("*.circom"):
        shutil.copy2(source, build / "circuits" / source.name)
    shutil.copytree(groth16py.circomlib_path(2), build / "circomlib")


def compile_circuit(
    main_file: str, template: str, args: tuple[int, ...], circuit_dir: Path, out_dir: Path, *, r1cs: bool = False
) -> CompiledCircuit:
    """Compile `component main {public [publicHash]} = template(args)` with --O2 into out_dir.

    Writes out_dir/circuit.wasm (and out_dir/circuit.r1cs when `r1cs`). Minutes for large shapes.
    """
    if not CIRCOM2_CLI.exists():
        raise CircuitToolError(f"the circom2 compiler is not installed ({CIRCOM2_CLI}); run scripts/setup.sh")
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fedmarket-circom-", dir=out_dir) as tmp:
        build = Path(tmp)
        _stage_sources(build, circuit_dir)
        arguments = ", ".join(str(a) for a in args)
        (build / "main.circom").write_text(
            "pragma circom 2.0.0;\n"
            f'include "circuits/{main_file}";\n'
            f"component main {{public [publicHash]}} = {template}({arguments});\n"
        )
        command = ["node", str(CIRCOM2_CLI), "main.circom", "--O2", "--wasm", "-o", "."]
        command += ["-l", "circuits", "-l", "circomlib"]
        if r1cs:
            command.append("--r1cs")
        _run(command, build, "circom2 compile")
        shutil.move(build / "main_js" / "main.wasm", out_dir / WASM_NAME)
        if r1cs:
            shutil.move(build / "main.r1cs", out_dir / R1CS_NAME)
    return CompiledCircuit(out_dir / WASM_NAME, out_dir / R1CS_NAME if r1cs else None, time.perf_counter() - start)


def _json_ready(value: Any) -> Any:
    """Circuit inputs as snarkjs reads them: decimal strings, nested lists kept."""
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    return str(int(value))


def compute_witness(wasm: Path, inputs: Mapping[str, Any], out_path: Path) -> Path:
    """Run the circuit's witness program under Node (snarkjs `wtns calculate`); writes a .wtns file."""
    input_path = out_path.with_suffix(".input.json")
    input_path.write_text(json.dumps({k: _json_ready(v) for k, v in inputs.items()}))
    try:
        run_snarkjs(["wtns", "calculate", str(wasm), str(input_path), str(out_path)], out_path.parent,
                    "wtns calculate (the witness)")  # fmt: skip
    finally:
        input_path.unlink(missing_ok=True)
    return out_path


_WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"


def _leb128(data: Any, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, offset


def _module_length(data: Any, start: int, declared: int) -> bool:
    """True iff the WebAssembly sections starting at `start` end exactly `declared` bytes later."""
    end = start + declared
    if declared < len(_WASM_MAGIC) or end > len(data):
        return False
    offset = start + len(_WASM_MAGIC)
    try:
        while offset < end:
            size, offset = _leb128(data, offset + 1)
            offset += size
    except IndexError:
        return False
    return offset == end


def extract_wasm(pk_path: Path) -> bytes | None:
    """The witness program embedded in a saved groth16py proving key, or None if there is none."""
    import mmap

    with pk_path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        position = data.find(_WASM_MAGIC)
        while position >= 8:
            declared = int.from_bytes(data[position - 8 : position], "little")
            if _module_length(data, position, declared):
                return bytes(data[position : position + declared])
            position = data.find(_WASM_MAGIC, position + 1)
    return None


def ensure_wasm(key_directory: Path) -> Path | None:
    """circuit.wasm for the key in `key_directory`, copied out of pk.bin on first use; None if unavailable."""
    from zk.cache import atomic_write

    wasm = key_directory / WASM_NAME
    if wasm.exists():
        return wasm
    pk_path = key_directory / "pk.bin"
    if not pk_path.exists():
        return None
    module = extract_wasm(pk_path)
    if module is None:
        return None
    atomic_write(wasm, module)
    return wasm


def prove_with_wasm(pk: groth16py.ProvingKey, wasm: Path, inputs: Mapping[str, Any]) -> bytes:
    """Witness under Node, then groth16py.prove_wtns; raises CircuitToolError or a groth16py error on failure."""
    with tempfile.TemporaryDirectory(prefix="fedmarket-wtns-") as tmp:
        wtns = compute_witness(wasm, inputs, Path(tmp) / "witness.wtns")
        return bytes(groth16py.prove_wtns(pk, str(wtns)))


def prove_inputs(
    pk: groth16py.ProvingKey,
    key_directory: Path,
    inputs: Mapping[str, Any],
    accept: Callable[[bytes], bool],
) -> bytes:
    """The fastest sound proof: Node witness + prove_wtns for large keys, else groth16py.prove (wasmi).

    `accept` is the caller's verifier; a fast-path proof it rejects (say a stale circuit.wasm) is
    discarded with a warning and the slow path decides. The returned proof is not re-checked here.
    """
    pk_path = key_directory / "pk.bin"
    large = pk_path.exists() and pk_path.stat().st_size >= NODE_WITNESS_MIN_KEY_BYTES
    wasm = ensure_wasm(key_directory) if large and node_tools_available() else None
    if wasm is not None:
        try:
            proof = prove_with_wasm(pk, wasm, inputs)
            if accept(proof):
                return proof
            reason = "its proof did not verify"
        except (CircuitToolError, groth16py.SetupError, groth16py.WitnessError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _LOG.warning("Node witness for %s failed (%s); proving with groth16py's wasmi witness", key_directory, reason)
    return bytes(groth16py.prove(pk, dict(inputs)))
