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
import time
from dataclasses import dataclass
from pathlib import Path

import groth16py

from zk.cache import cache_dir
from zk.groth16.rules import CircuitShape

CIRCUIT_DIR = Path(__file__).resolve().parent.parent / "circuits"
CIRCUIT_FILE = CIRCUIT_DIR / "fedmarket_rules.circom"
UNSAFE_LABEL = "UNSAFE single-party trusted setup: the setup runner can forge proofs; never use for real money"
CEREMONY_LABEL = "multi-party ceremony key (sound if one contributor destroyed their secret)"


def source_hash() -> str:
    """Hash of the circuit source: a change invalidates every cached key."""
    return hashlib.sha256(CIRCUIT_FILE.read_bytes()).hexdigest()[:12]


def main_source(shape: CircuitShape) -> str:
    return (
        "pragma circom 2.0.0;\n"
        f'include "{CIRCUIT_FILE.as_posix()}";\n'
        f"component main {{public [publicHash]}} = FedmarketRules({shape.n}, {shape.d}, {shape.value_bits});\n"
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

    @property
    def unsafe(self) -> bool:
        return self.label == UNSAFE_LABEL


def key_dir(shape: CircuitShape, cache: str | os.PathLike[str] | None = None) -> Path:
    return cache_dir(cache) / "groth16" / f"{shape.key}-{source_hash()}"


def _write_main(directory: Path, shape: CircuitShape) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "main.circom"
    path.write_text(main_source(shape))
    return path


def setup_keys(shape: CircuitShape, cache: str | os.PathLike[str] | None = None, *, force: bool = False) -> CircuitKeys:
    """Cached keys for `shape`; compiles and runs the single-party setup on a miss (minutes for big d)."""
    directory = key_dir(shape, cache)
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
        )
    main = _write_main(directory, shape)
    start = time.perf_counter()
    pk, vk = groth16py.setup_circom(str(main), [groth16py.circomlib_path(2)])
    seconds = time.perf_counter() - start
    _save(directory, pk, vk, UNSAFE_LABEL, seconds)
    return CircuitKeys(shape, pk, vk, UNSAFE_LABEL, directory, seconds)


def import_ceremony(
    shape: CircuitShape, zkey_path: str | os.PathLike[str], cache: str | os.PathLike[str] | None = None
) -> CircuitKeys:
    """Import a snarkjs Groth16 `.zkey` (multi-party ceremony) for `shape`, replacing any cached key."""
    directory = key_dir(shape, cache)
    main = _write_main(directory, shape)
    start = time.perf_counter()
    pk, vk = groth16py.import_zkey(str(zkey_path), str(main), [groth16py.circomlib_path(2)])
    seconds = time.perf_counter() - start
    _save(directory, pk, vk, CEREMONY_LABEL, seconds)
    return CircuitKeys(shape, pk, vk, CEREMONY_LABEL, directory, seconds)


def _save(directory: Path, pk: groth16py.ProvingKey, vk: groth16py.VerifyingKey, label: str, seconds: float) -> None:
    pk.save(str(directory / "pk.bin"))
    vk.save(str(directory / "vk.bin"))
    (directory / "vk.json").write_text(vk.to_json())
    (directory / "meta.json").write_text(json.dumps({"label": label, "setup_seconds": seconds}))
