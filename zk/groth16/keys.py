"""Circuit keys for one CircuitShape: compile, set up (or import a ceremony), cache on disk.

`setup_keys` runs groth16py's single-party setup: whoever runs it knows the toxic waste and
can forge proofs, so every result carries UNSAFE_LABEL and must never guard real money.
`import_ceremony` loads a snarkjs `.zkey` from a multi-party ceremony instead (zk/CEREMONY.md).
Keys are cached under <cache>/groth16/<rule version>-n-d-vb-<source hash>/ (too big to commit).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import groth16py

from zk.cache import cache_dir
from zk.groth16.rules import CircuitShape

CIRCUIT_DIR = Path(__file__).resolve().parent.parent / "circuits"
CIRCUIT_FILE = CIRCUIT_DIR / "fedmarket_rules.circom"
COMPILE_LOG = "compile.log"
_T = TypeVar("_T")
UNSAFE_LABEL = "UNSAFE single-party trusted setup: the setup runner can forge proofs; never use for real money"
CEREMONY_LABEL = "multi-party ceremony key (sound if one contributor destroyed their secret)"


@dataclass(frozen=True)
class CircuitSpec:
    """One rule version's circuit: its main file, its template and every source file its keys depend on."""

    version: str
    main_file: Path
    template: str
    sources: tuple[Path, ...]

    def source_hash(self) -> str:
        digest = hashlib.sha256()
        for path in self.sources:
            digest.update(path.read_bytes())
        return digest.hexdigest()[:12]


#: rffl-v1: the rules, public input sha256(W ‖ digest) >> 3.
RULES_V1 = CircuitSpec("rffl-v1", CIRCUIT_FILE, "FedmarketRules", (CIRCUIT_FILE,))
#: rffl-v2: rffl-v1 plus the Poseidon ↔ Pedersen link (zk/groth16/linked.py).
RULES_V2 = CircuitSpec(
    "rffl-v2",
    CIRCUIT_DIR / "fedmarket_rules_v2.circom",
    "FedmarketRulesLinked",
    (CIRCUIT_FILE, CIRCUIT_DIR / "fedmarket_rules_v2.circom"),
)
#: rffl-v3: rffl-v2 plus the proven norm-ratio filter and capped scores for dropped rows.
RULES_V3 = CircuitSpec(
    "rffl-v3",
    CIRCUIT_DIR / "fedmarket_rules_v3.circom",
    "FedmarketRulesNormed",
    (CIRCUIT_FILE, CIRCUIT_DIR / "fedmarket_rules_v3.circom"),
)
#: rffl-v4: rffl-v3 plus a missing score M in [-1, 0] (a silent owner scores M, a dropped row min(φ, M)).
RULES_V4 = CircuitSpec(
    "rffl-v4",
    CIRCUIT_DIR / "fedmarket_rules_v4.circom",
    "FedmarketRulesScored",
    (CIRCUIT_FILE, CIRCUIT_DIR / "fedmarket_rules_v4.circom"),
)


def source_hash(spec: CircuitSpec = RULES_V1) -> str:
    """Hash of the circuit source: a change invalidates every cached key."""
    return spec.source_hash()


def main_source(shape: CircuitShape, spec: CircuitSpec = RULES_V1) -> str:
    return (
        "pragma circom 2.0.0;\n"
        f'include "{spec.main_file.as_posix()}";\n'
        f"component main {{public [publicHash]}} = {spec.template}({shape.n}, {shape.d}, {shape.value_bits});\n"
    )


@dataclass
class CircuitKeys:
    """A proving key, its verifying key and where they came from."""

    shape: CircuitShape
    pk: groth16py.ProvingKey
    vk: groth16py.VerifyingKey
    label: str
    directory: Path
    setup_seconds: float = 0.0
    spec: CircuitSpec = RULES_V1

    @property
    def unsafe(self) -> bool:
        return self.label == UNSAFE_LABEL


def key_dir(shape: CircuitShape, cache: str | os.PathLike[str] | None = None, spec: CircuitSpec = RULES_V1) -> Path:
    name = f"{spec.version}-n{shape.n}-d{shape.d}-vb{shape.value_bits}"
    return cache_dir(cache) / "groth16" / f"{name}-{spec.source_hash()}"


def _write_main(directory: Path, shape: CircuitShape, spec: CircuitSpec = RULES_V1) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "main.circom"
    path.write_text(main_source(shape, spec))
    return path


def setup_keys(
    shape: CircuitShape,
    cache: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    spec: CircuitSpec = RULES_V1,
) -> CircuitKeys:
    """Cached keys for `shape`; compiles and runs the single-party setup on a miss (minutes for big d)."""
    directory = key_dir(shape, cache, spec)
    pk_path, vk_path, meta_path = directory / "pk.bin", directory / "vk.bin", directory / "meta.json"
    if not force and pk_path.exists() and vk_path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return CircuitKeys(
            shape,
            groth16py.ProvingKey.load(str(pk_path)),
            groth16py.VerifyingKey.load(str(vk_path)),
            meta["label"],
            directory,
            meta.get("setup_seconds", 0.0),
            spec,
        )
    main = _write_main(directory, shape, spec)
    start = time.perf_counter()
    pk, vk = _compiled(directory, lambda: groth16py.setup_circom(str(main), _includes()))
    seconds = time.perf_counter() - start
    _save(directory, pk, vk, UNSAFE_LABEL, seconds)
    return CircuitKeys(shape, pk, vk, UNSAFE_LABEL, directory, seconds, spec)


def import_ceremony(
    shape: CircuitShape,
    zkey_path: str | os.PathLike[str],
    cache: str | os.PathLike[str] | None = None,
    *,
    spec: CircuitSpec = RULES_V1,
) -> CircuitKeys:
    """Import a snarkjs Groth16 `.zkey` (multi-party ceremony) for `shape`, replacing any cached key."""
    directory = key_dir(shape, cache, spec)
    main = _write_main(directory, shape, spec)
    start = time.perf_counter()
    pk, vk = _compiled(directory, lambda: groth16py.import_zkey(str(zkey_path), str(main), _includes()))
    seconds = time.perf_counter() - start
    _save(directory, pk, vk, CEREMONY_LABEL, seconds)
    return CircuitKeys(shape, pk, vk, CEREMONY_LABEL, directory, seconds, spec)


def _includes() -> list[str]:
    """circom include paths: the project's circuits and groth16py's circomlib."""
    return [str(CIRCUIT_DIR), groth16py.circomlib_path(2)]


def _compiled(directory: Path, compile_and_setup: Callable[[], _T]) -> _T:
    """Run a groth16py compile with file descriptor 1 sent to <directory>/compile.log: circom prints its
    statistics there, which would otherwise land in the middle of a command's output. The log stays beside the
    key (its constraint count goes to meta.json); a failed compile prints it to stderr."""
    log = directory / COMPILE_LOG
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with log.open("wb") as sink:
            os.dup2(sink.fileno(), 1)
            try:
                return compile_and_setup()
            except BaseException:
                sys.stderr.write(log.read_text(errors="replace"))
                raise
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def compiled_constraints(directory: Path) -> int | None:
    """The non-linear constraint count circom reported for the key in `directory` (None if it is not known)."""
    log = directory / COMPILE_LOG
    found = re.search(r"non-linear constraints: (\d+)", log.read_text(errors="replace")) if log.exists() else None
    return int(found.group(1)) if found else None


def _save(directory: Path, pk: groth16py.ProvingKey, vk: groth16py.VerifyingKey, label: str, seconds: float) -> None:
    (directory / "circuit.wasm").unlink(missing_ok=True)  # zk.groth16.backend re-extracts it from the new key
    pk.save(str(directory / "pk.bin"))
    vk.save(str(directory / "vk.bin"))
    (directory / "vk.json").write_text(vk.to_json())
    meta = {"label": label, "setup_seconds": seconds, "constraints": compiled_constraints(directory)}
    (directory / "meta.json").write_text(json.dumps(meta))
