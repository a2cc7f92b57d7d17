"""Is the verifier on chain the one the task published? Compare deployed bytecode with a compile from the key.

An auditor checks proofs against the verifying key published on IPFS; the chain checks them with the
verifier contract the owner deployed. If the two keys differed, an audit could pass proofs the chain
never saw or miss ones it accepted. So this check rebuilds the verifier from the published key
(groth16py's Solidity export, compiled with the project's solc settings) and compares runtime
bytecode with what the task's adapter points to, and checks the adapter and the Pedersen verifier
against the committed artifacts. The solc metadata trailer (a hash of the source text, comments
included) is cut off before comparing; the adapter's two immutables (the verifier addresses) are
zeroed, as solc leaves them in the artifact's deployedBytecode.
"""

from __future__ import annotations

import json
import time
from typing import Any

import groth16py
from web3 import Web3

from marketplace.chain.artifacts import load_artifact
from marketplace.errors import ServiceUnavailableError
from zk.auditor import Check
from zk.groth16.solidity import ADAPTERS, VERIFIER_NAME, compile_verifier

_LIBRARY = "solc + eth_getCode"


def strip_metadata(code: bytes) -> bytes:
    """Runtime code without solc's CBOR metadata trailer (its length is the last two bytes)."""
    if len(code) < 2:
        return code
    length = int.from_bytes(code[-2:], "big")
    if length + 2 > len(code) or code[-2 - length] not in (0xA1, 0xA2, 0xA3):
        return code
    return code[: -2 - length]


def compiled_runtime(vk_json: dict[str, Any]) -> bytes:
    """Runtime bytecode of the verifier generated from a snarkjs-format verifying key."""
    source = groth16py.VerifyingKey.from_snarkjs(json.dumps(vk_json)).to_solidity(
        pragma="0.8.28", contract_name=VERIFIER_NAME
    )
    return bytes.fromhex(compile_verifier(source)["runtime"])


def _artifact_runtime(name: str) -> bytes:
    return bytes.fromhex(load_artifact(name)["deployedBytecode"].removeprefix("0x"))


def _without_immutables(code: bytes, *addresses: str) -> bytes:
    """Zero every 32-byte word holding one of `addresses` (how solc leaves immutables in deployedBytecode)."""
    for address in addresses:
        word = bytes(12) + bytes.fromhex(address.removeprefix("0x"))
        code = code.replace(word, bytes(32))
    return code


def check_onchain_verifier(w3: Web3, adapter_address: str, vk_json: dict[str, Any], rule_version: str) -> Check:
    """The task's IRoundVerifier is the committed adapter, over the committed Pedersen verifier and the
    verifier compiled from the published key."""
    start = time.perf_counter()

    def done(passed: bool, detail: str) -> Check:
        return Check("verifier on chain", passed, detail, time.perf_counter() - start, _LIBRARY)

    adapter_name = ADAPTERS.get(rule_version)
    if adapter_name is None:
        return done(False, f"unknown rule version {rule_version!r}")
    artifact = load_artifact(adapter_name)
    adapter = w3.eth.contract(address=Web3.to_checksum_address(adapter_address), abi=artifact["abi"])
    try:
        rules_address = adapter.functions.rules().call()
        pedersen_address = adapter.functions.pedersen().call()
    except ServiceUnavailableError:  # no answer says nothing about the adapter
        raise
    except Exception as exc:  # not an adapter at all: no such getters
        return done(False, f"{adapter_address} is not a {adapter_name}: {type(exc).__name__}")
    code = bytes(w3.eth.get_code(Web3.to_checksum_address(adapter_address)))
    if _without_immutables(code, rules_address, pedersen_address) != _artifact_runtime(adapter_name):
        return done(False, f"the task's verifier {adapter_address} is not the committed {adapter_name}")
    if bytes(w3.eth.get_code(pedersen_address)) != _artifact_runtime("PedersenAggregationVerifier"):
        return done(False, f"{pedersen_address} is not the committed PedersenAggregationVerifier")
    deployed = strip_metadata(bytes(w3.eth.get_code(rules_address)))
    if deployed != strip_metadata(compiled_runtime(vk_json)):
        return done(False, f"the Groth16 verifier at {rules_address} is not compiled from the published verifying key")
    return done(True, f"{adapter_name} → Groth16 verifier {rules_address} matches the published key")
