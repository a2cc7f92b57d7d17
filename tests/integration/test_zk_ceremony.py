"""Trusted setup from a multi-party snarkjs ceremony, imported and used by fedmarket's prover.

Runs the real snarkjs commands (two contributors, beacon, zkey verify) on a small circuit with
the rules circuit's interface, imports the final .zkey with zk.groth16.keys.import_ceremony, and
checks that proofs from the Node-witness prover verify under the verifying key *snarkjs*
exported (not one groth16py derived), with py_ecc too, and that a wrong statement is refused.
Also checks the Node-witness backend against groth16py's own witness on the rules circuit.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import groth16py
import pytest

from zk.auditor_groth16 import pairing_check
from zk.groth16 import backend
from zk.groth16.ceremony import compile_r1cs, run_ceremony
from zk.groth16.keys import CEREMONY_LABEL, CircuitKeys, CircuitSpec, import_ceremony, setup_keys
from zk.groth16.prover import prove_round, verify_round
from zk.groth16.rules import CircuitShape
from zk.groth16.sample import sample_round

TOY_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "circuits" / "ceremony_toy.circom"
TOY = CircuitSpec("ceremony-toy", TOY_FILE, "CeremonyToy", (TOY_FILE,))
TOY_SHAPE = CircuitShape(1, 4, 8)
TOY_INPUTS = {"publicHash": 1 + 4 + 9 + 16, "x": [1, 2, 3, 4]}

pytestmark = pytest.mark.skipif(not backend.node_tools_available(), reason="scripts/setup.sh installs circom2/snarkjs")


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("ceremony")
    r1cs = compile_r1cs(TOY_SHAPE, work / "build", TOY)
    return run_ceremony(r1cs, work / "run", ["alice", "bob"], power=6)


@pytest.fixture(scope="module")
def ceremony_keys(ceremony, tmp_path_factory) -> CircuitKeys:  # type: ignore[no-untyped-def]
    return import_ceremony(TOY_SHAPE, ceremony.zkey, tmp_path_factory.mktemp("keys"), spec=TOY)


def test_the_transcript_names_every_contribution(ceremony) -> None:  # type: ignore[no-untyped-def]
    names = [name for name, _ in ceremony.contribution_hashes]
    assert names == ["phase1:alice", "phase1:bob", "phase2:alice", "phase2:bob"]
    hashes = [h for _, h in ceremony.contribution_hashes]
    assert all(len(h.replace(" ", "")) == 128 for h in hashes) and len(set(hashes)) == 4


def test_imported_key_is_labelled_as_a_ceremony_key(ceremony_keys: CircuitKeys) -> None:
    assert ceremony_keys.label == CEREMONY_LABEL and not ceremony_keys.unsafe


def test_proof_verifies_under_the_verifying_key_snarkjs_exported(ceremony, ceremony_keys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(backend, "NODE_WITNESS_MIN_KEY_BYTES", 0)  # take the Node witness path even for a tiny key
    vk_json = ceremony.verification_key.read_text()
    snarkjs_vk = groth16py.VerifyingKey.from_snarkjs(vk_json)

    def accept(proof: bytes) -> bool:
        return groth16py.Verifier(snarkjs_vk).verify(proof, [TOY_INPUTS["publicHash"]])

    proof = backend.prove_inputs(ceremony_keys.pk, ceremony_keys.directory, TOY_INPUTS, accept)
    assert accept(proof)
    assert (ceremony_keys.directory / backend.WASM_NAME).exists()  # the Node witness path was taken
    assert pairing_check(json.loads(vk_json), proof, [TOY_INPUTS["publicHash"]])
    assert not pairing_check(json.loads(vk_json), proof, [TOY_INPUTS["publicHash"] + 1])


def test_a_false_statement_gets_no_proof(ceremony_keys: CircuitKeys) -> None:
    with pytest.raises(backend.CircuitToolError):
        backend.prove_with_wasm(
            ceremony_keys.pk, ceremony_keys.directory / backend.WASM_NAME, {"publicHash": 31, "x": [1, 2, 3, 4]}
        )


def test_node_witness_matches_the_key_and_falls_back_when_broken(tmp_path: Path, caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(backend, "NODE_WITNESS_MIN_KEY_BYTES", 0)
    shape = CircuitShape(3, 16)
    keys = setup_keys(shape)
    wasm = backend.ensure_wasm(keys.directory)
    assert wasm is not None and wasm.read_bytes()[:4] == b"\0asm"
    proved = prove_round(keys, sample_round(shape, seed=3))
    assert verify_round(keys, proved.proof, proved.witness.statement.weights)

    # a key directory whose circuit.wasm is not this circuit's: the prover warns and proves with wasmi
    broken = CircuitKeys(keys.shape, keys.pk, keys.vk, keys.label, tmp_path, spec=keys.spec)
    (tmp_path / "pk.bin").symlink_to(keys.directory / "pk.bin")
    (tmp_path / backend.WASM_NAME).write_bytes(b"\0asm\1\0\0\0")
    with caplog.at_level(logging.WARNING, logger="zk.groth16.backend"):
        again = prove_round(broken, sample_round(shape, seed=3))
    assert verify_round(keys, again.proof, again.witness.statement.weights)
    assert "Node witness" in caplog.text


def test_extract_wasm_refuses_a_file_without_a_module(tmp_path: Path) -> None:
    fake = tmp_path / "pk.bin"
    fake.write_bytes(b"\x64\0\0\0\0\0\0\0\0asm\1\0\0\0" + b"\xff" * 64)  # declared 100 bytes, 72 present
    assert backend.extract_wasm(fake) is None
    assert backend.ensure_wasm(tmp_path) is None
