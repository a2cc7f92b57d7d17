"""The auditor's check that the task's on-chain verifier is the committed adapter over a Groth16 verifier
compiled from the published verifying key (real Anvil, real deployments)."""

from __future__ import annotations

from marketplace.chain.anvil import LocalAnvil, dev_accounts
from marketplace.chain.session import ChainSession, connect
from zk.auditor_verifier import check_onchain_verifier, strip_metadata
from zk.groth16.keys import RULES_V2, setup_keys
from zk.groth16.rules import CircuitShape
from zk.groth16.solidity import deploy, verifying_key_json
from zk.onchain import PedersenVerifier


def test_only_the_published_key_and_committed_contracts_pass() -> None:
    shape = CircuitShape(3, 16)
    v2, v1 = setup_keys(shape, spec=RULES_V2), setup_keys(shape)  # two different keys (cached after a first run)
    with LocalAnvil(accounts=2) as node:
        session = ChainSession(connect(node.rpc_url, expected_chain_id=31337), dev_accounts(2)[0])
        pedersen, _ = PedersenVerifier.deploy(session)
        task_verifier = deploy(session, v2, pedersen.address)
        adapter = task_verifier.adapter.address

        good = check_onchain_verifier(session.w3, adapter, verifying_key_json(v2), "rffl-v2")
        assert good.passed, good.detail
        other_key = check_onchain_verifier(session.w3, adapter, verifying_key_json(v1), "rffl-v2")
        assert not other_key.passed and "not compiled from the published verifying key" in other_key.detail
        other_adapter = check_onchain_verifier(session.w3, adapter, verifying_key_json(v2), "rffl-v1")
        assert not other_adapter.passed and "RulesRoundVerifier" in other_adapter.detail
        not_adapter = check_onchain_verifier(session.w3, pedersen.address, verifying_key_json(v2), "rffl-v2")
        assert not not_adapter.passed


def test_strip_metadata_only_cuts_a_cbor_trailer() -> None:
    body = bytes.fromhex("6080604052")
    trailer = bytes.fromhex("a2646970667358") + bytes(5)  # a CBOR map header and some bytes
    code = body + trailer + len(trailer).to_bytes(2, "big")
    assert strip_metadata(code) == body
    assert strip_metadata(body + b"\x00\x03") == body + b"\x00\x03"  # byte before the "trailer" is not a CBOR map
