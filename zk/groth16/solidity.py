"""The Solidity side of layer 2: export a task's Groth16 verifier, compile it, deploy it behind the adapter.

The verifier is generated from the verifying key (groth16py's `to_solidity`, snarkjs ABI, MIT-licensed
template by C. Reitwiessner and OKIMS, header kept), so it is built per task at run time rather than
committed: a fresh setup means a fresh key. RulesRoundVerifier (contracts/src/zk/groth16) combines it
with the Pedersen layer behind IRoundVerifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import groth16py
from web3 import Web3
from web3.contract import Contract

from marketplace.chain.artifacts import load_artifact
from marketplace.chain.compiler import EVM_VERSION, OPTIMIZER_RUNS, _run_solcjs
from marketplace.chain.session import ChainSession
from zk.groth16.keys import CircuitKeys
from zk.groth16.prover import RoundProof

VERIFIER_NAME = "FedmarketRulesGroth16Verifier"
ADAPTER = "RulesRoundVerifier"
#: The adapter for each rule version (rffl-v2 adds the Poseidon ↔ Pedersen link, zk/groth16/linked.py; rffl-v3 and
#: rffl-v4 have rffl-v2's public input, so the same adapter).
LINKED_ADAPTER = "LinkedRulesRoundVerifier"
ADAPTERS = {"rffl-v1": ADAPTER, "rffl-v2": LINKED_ADAPTER, "rffl-v3": LINKED_ADAPTER, "rffl-v4": LINKED_ADAPTER}
VERIFY_GAS = 1_000_000  # set explicitly: estimateGas under-reports when the pairing runs out of gas (DESIGN §4)


def verifier_source(keys: CircuitKeys) -> str:
    """Solidity source of the task's verifier, labelled with the key's provenance."""
    source = keys.vk.to_solidity(pragma="0.8.28", contract_name=VERIFIER_NAME)
    note = f"// fedmarket {keys.directory.name}: {keys.label}\n"
    return note + source


def compile_verifier(source: str) -> dict[str, Any]:
    """abi, creation bytecode and runtime code (hex) of the generated verifier (solcjs, the project's settings)."""
    payload = {
        "language": "Solidity",
        "sources": {"Verifier.sol": {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "evmVersion": EVM_VERSION,
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }
    output = _run_solcjs(payload)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("verifier compilation failed:\n" + "\n".join(errors))
    data = output["contracts"]["Verifier.sol"][VERIFIER_NAME]
    evm = data["evm"]
    runtime = evm["deployedBytecode"]["object"]
    return {"abi": data["abi"], "bytecode": "0x" + evm["bytecode"]["object"], "runtime": runtime}


@dataclass
class DeployedRules:
    """The generated verifier and the adapter on chain."""

    verifier: Contract
    adapter: Contract
    deploy_gas: int

    def verify_proof(self, proof: RoundProof | Any, public_input: int) -> tuple[bool, int]:
        """The bare Groth16 verifier: (answer, gas of a transaction making the call)."""
        w = proof.words()
        call = self.verifier.functions.verifyProof(w[0:2], [w[2:4], w[4:6]], w[6:8], [public_input])
        return bool(call.call({"gas": VERIFY_GAS})), int(call.estimate_gas({"gas": VERIFY_GAS}))

    def verify_round(
        self, commitments: list[tuple[int, int]], weights: list[int], model: tuple[int, int], proof: bytes
    ) -> tuple[bool, int]:
        """The adapter's verifyRound (both layers): (answer, gas)."""
        call = self.adapter.functions.verifyRound(
            [list(c) for c in commitments], [int(x) for x in weights], list(model), proof
        )
        return bool(call.call({"gas": VERIFY_GAS})), int(call.estimate_gas({"gas": VERIFY_GAS}))

    def public_input(self, weights: list[int], digest: int) -> int:
        return int(self.adapter.functions.publicInput([int(x) for x in weights], int(digest)).call())


def deploy(session: ChainSession, keys: CircuitKeys, pedersen_address: str) -> DeployedRules:
    """Deploy the task's verifier and its rule version's adapter (RulesRoundVerifier for rffl-v1,
    LinkedRulesRoundVerifier for rffl-v2 to rffl-v4) pointing at it and at the Pedersen verifier."""
    compiled = compile_verifier(verifier_source(keys))
    v_addr, v_receipt = session.deploy(compiled["abi"], compiled["bytecode"])
    artifact = load_artifact(ADAPTERS[keys.spec.version])
    a_addr, a_receipt = session.deploy(artifact["abi"], artifact["bytecode"], pedersen_address, v_addr)
    w3: Web3 = session.w3
    return DeployedRules(
        verifier=w3.eth.contract(address=v_addr, abi=compiled["abi"]),
        adapter=w3.eth.contract(address=a_addr, abi=artifact["abi"]),
        deploy_gas=v_receipt.gas_used + a_receipt.gas_used,
    )


def verifying_key_json(keys: CircuitKeys) -> dict[str, Any]:
    """The snarkjs-format verifying key, what auditors feed zk.auditor_groth16."""
    return json.loads(keys.vk.to_json())


__all__ = [
    "ADAPTER",
    "ADAPTERS",
    "VERIFIER_NAME",
    "DeployedRules",
    "compile_verifier",
    "deploy",
    "groth16py",
    "verifier_source",
]
