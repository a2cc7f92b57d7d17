"""A multi-party Groth16 ceremony with snarkjs, run locally: what zk/CEREMONY.md describes, step by step.

Real ceremonies run each contribution on a different machine; this module runs the same snarkjs
commands in one place so the import path (zk.groth16.keys.import_ceremony) is exercised with
a key nobody here chose alone, and so coordinators have a tested script of the steps. Each
contributor's entropy comes from `secrets` and is never written anywhere: the resulting key
is sound as long as one contribution's entropy is gone (Groth16's phase-2 argument; Bowe,
Gabizon & Miers 2017).

Steps: phase 1 (powers of tau: new → contributions → beacon → prepare phase 2), phase 2
(groth16 setup on the circuit's .r1cs → contributions → beacon), then `zkey verify` against
the r1cs and the phase-1 file, and the verifying key exported by snarkjs itself. A production
ceremony replaces phase 1 with a public powers-of-tau file (`ptau=` argument).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zk.groth16.backend import compile_circuit, run_snarkjs
from zk.groth16.keys import RULES_V1, CircuitSpec
from zk.groth16.rules import CircuitShape

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# phase 1 prints "Contribution Response Hash imported:", phase 2 "Contribution Hash:", then 16 hex words
_HASH_LINE = re.compile(r"Contribution (?:Response )?Hash(?: imported)?:\s*((?:[0-9a-f]{8}\s+){15}[0-9a-f]{8})", re.I)


@dataclass
class Ceremony:
    """Files and public transcript of one ceremony: what a coordinator publishes."""

    r1cs: Path
    ptau: Path
    zkey: Path
    verification_key: Path
    contribution_hashes: list[tuple[str, str]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _contribution_hash(output: str) -> str:
    match = _HASH_LINE.search(_ANSI.sub("", output))
    return " ".join(match.group(1).split()) if match else ""


def compile_r1cs(shape: CircuitShape, out_dir: Path, spec: CircuitSpec = RULES_V1) -> Path:
    """The circuit's constraint system (circom2 --O2), the input of phase 2."""
    compiled = compile_circuit(
        spec.main_file.name,
        spec.template,
        (shape.n, shape.d, shape.value_bits),
        spec.main_file.parent,
        out_dir,
        r1cs=True,
    )
    assert compiled.r1cs is not None
    return compiled.r1cs


def run_ceremony(
    r1cs: Path,
    workdir: Path,
    contributors: Sequence[str],
    *,
    power: int,
    beacon: str | None = None,
    ptau: Path | None = None,
) -> Ceremony:
    """Phase 1 (unless `ptau` is given) and phase 2 with one contribution per name, a beacon, and a verify.

    `power`: 2^power must exceed the circuit's constraints plus public inputs. `beacon`: public
    randomness in hex (a future block hash in production); random here unless given.
    """
    if len(contributors) < 1:
        raise ValueError("a ceremony needs at least one contributor")
    workdir.mkdir(parents=True, exist_ok=True)
    beacon = beacon or secrets.token_hex(32)
    result = Ceremony(r1cs, workdir / "pot_final.ptau", workdir / "final.zkey", workdir / "verification_key.json")

    def step(name: str, args: Sequence[str]) -> str:
        start = time.perf_counter()
        output = run_snarkjs(args, workdir, name)
        result.seconds[name] = result.seconds.get(name, 0.0) + time.perf_counter() - start
        return output

    def contributions(phase: str, command: str, first: str, pattern: str) -> str:
        """One `<command> contribute` per contributor, chained; returns the last file."""
        previous = first
        for index, who in enumerate(contributors, start=1):
            current = pattern.format(index)
            entropy = secrets.token_hex(32)  # used once, never stored: this contributor's toxic waste
            out = step(
                f"{command} contribute", [command, "contribute", previous, current, f"--name={who}", f"-e={entropy}"]
            )
            result.contribution_hashes.append((f"{phase}:{who}", _contribution_hash(out)))
            previous = current
        return previous

    if ptau is None:
        step("powersoftau new", ["powersoftau", "new", "bn128", str(power), "pot_0000.ptau"])
        last = contributions("phase1", "powersoftau", "pot_0000.ptau", "pot_{:04d}.ptau")
        step("powersoftau beacon", ["powersoftau", "beacon", last, "pot_beacon.ptau", beacon, "10"])
        step("powersoftau prepare phase2", ["powersoftau", "prepare", "phase2", "pot_beacon.ptau", "pot_final.ptau"])
    else:
        result.ptau = ptau
    step("groth16 setup", ["groth16", "setup", str(r1cs), str(result.ptau), "c_0000.zkey"])
    previous = contributions("phase2", "zkey", "c_0000.zkey", "c_{:04d}.zkey")
    step("zkey beacon", ["zkey", "beacon", previous, result.zkey.name, beacon, "10"])
    step("zkey verify", ["zkey", "verify", str(r1cs), str(result.ptau), result.zkey.name])
    step(
        "zkey export verificationkey",
        ["zkey", "export", "verificationkey", result.zkey.name, result.verification_key.name],
    )
    return result
