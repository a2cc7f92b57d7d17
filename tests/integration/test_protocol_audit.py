"""The auditor passes an honest task and catches a tampered model, a wrong weight and a forged proof; a chain or
IPFS node that stops answering mid-audit stops the audit instead of failing a round it could not read.

The contract itself refuses the last two (its verifier checks Σ W_i C_i and the Groth16 proof), so a hostile
aggregator could only get them on chain for an `unverified` task; here they are built by tampering with the
public evidence of an honest round before it reaches `audit_round`, which is exactly what the auditor sees.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from protocol_support.market import build_market
from protocol_support.outage import flaky_contract, link_of, silent_node

from client.audit import audit_round, audit_task, gather
from client.commands.audit import basic_checks
from marketplace.chain.anvil import LocalAnvil
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainUnavailableError
from marketplace.ipfs import IpfsClient
from marketplace.ipfs.client import IpfsUnavailableError
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from zk.auditor_verifier import check_onchain_verifier

pytestmark = pytest.mark.integration


def _failed(checks) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.name for c in checks if not c.passed}


class NodeGoesSilent(TaskFiles):
    """The auditor's IPFS node, which hangs once the task's spec (`after="spec"`) or initial model has been read."""

    def __init__(self, ipfs: IpfsClient, silent: IpfsClient, after: str) -> None:
        super().__init__(ipfs)
        self.silent, self.after = silent, after

    def spec(self, cid: str) -> TaskSpec:
        spec = super().spec(cid)
        if self.after == "spec":
            self.ipfs = self.silent
        return spec

    def model(self, cid: str, spec: TaskSpec) -> dict[str, np.ndarray]:
        arrays = super().model(cid, spec)
        self.ipfs = self.silent
        return arrays


def test_auditor_passes_honest_task_and_catches_tampering(
    marketplace: MarketplaceContract,
    session_for,
    ipfs: IpfsClient,
    anvil: LocalAnvil,
    accounts,  # type: ignore[no-untyped-def]
) -> None:
    files = TaskFiles(ipfs)
    market = build_market(marketplace, session_for, files, proof="groth16")
    for round_ in (1, 2, 3):
        market.submit_all(round_)
        market.aggregator.aggregate_round(market.task_id, round_)

    report = audit_task(marketplace, files, market.task_id, market.validation)
    assert report.passed, report.failures()
    assert [r.round for r in report.rounds] == [1, 2, 3]
    only = audit_task(marketplace, files, market.task_id, market.validation, rounds={2})  # judged from round 1's model
    verdicts = [[(c.name, c.passed, c.detail) for c in r.checks] for r in (only.rounds[0], report.rounds[1])]
    assert [r.round for r in only.rounds] == [2] and verdicts[0] == verdicts[1]
    names = {c.name for c in report.rounds[0].checks}
    # rffl-v2 (the default rule version) adds the Poseidon <-> Pedersen link check
    assert {"aggregation", "model opening", "model file", "rules", "rules proof (Groth16)", "poseidon-pedersen link",
            "contributions", "payouts"} <= names  # fmt: skip

    info = marketplace.get_task(market.task_id)
    spec = files.spec(info.spec_cid)
    vk = json.loads(files.get(spec.rules.verifying_key_cid, 1 << 20))  # type: ignore[union-attr]
    honest = gather(marketplace, files, market.task_id, spec)[0]

    def audit(ev):  # type: ignore[no-untyped-def]
        return audit_round(ev, spec, info.terms, verifying_key=vk, validation=market.validation)

    assert not _failed(audit(honest))

    # outages: no answer is not a verdict
    with silent_node() as stalled:
        with pytest.raises(IpfsUnavailableError):
            audit_task(marketplace, NodeGoesSilent(ipfs, stalled, "model"), market.task_id, market.validation)
        with pytest.raises(IpfsUnavailableError):  # `fedmarket audit --basic`: was "model file matches its CID" FAIL
            basic_checks(marketplace, NodeGoesSilent(ipfs, stalled, "spec"), market.task_id)
    reader = flaky_contract(anvil.rpc_url, accounts[0], marketplace.address)
    link_of(reader).cut()
    with pytest.raises(ChainUnavailableError):  # was "… is not a RoundVerifierAdapter"
        check_onchain_verifier(reader.session.w3, info.terms.verifier, vk, spec.rules.rule_version)  # type: ignore[union-attr]

    # a model file that is not the committed aggregate (what a CID swap on an unverified task would publish)
    first = next(iter(honest.model))  # type: ignore[arg-type]
    model = {k: v.copy() for k, v in honest.model.items()}  # type: ignore[union-attr]
    model[first].flat[0] += np.float32(0.5)
    assert "model file" in _failed(audit(dataclasses.replace(honest, model=model)))

    # a published aggregate that does not open the on-chain model commitment
    record = dataclasses.replace(
        honest.record,
        weighted_sum=[
            *honest.record.weighted_sum[:-1],  # type: ignore[union-attr]
            honest.record.weighted_sum[-1] + 1,
        ],
    )  # type: ignore[union-attr]
    assert "model opening" in _failed(audit(dataclasses.replace(honest, record=record)))

    # a wrong weight on chain: the homomorphic check, the rules and the proof all refuse it
    weights = list(honest.event.weights)
    weights[0] += 1
    event = dataclasses.replace(honest.event, weights=tuple(weights))
    record = dataclasses.replace(honest.record, weights=weights)  # type: ignore[type-var]
    failed = _failed(audit(dataclasses.replace(honest, event=event, record=record)))
    assert {"aggregation", "rules", "rules proof (Groth16)"} <= failed

    # a forged proof: one bit of C flipped, or a digest for another statement
    forged = bytearray(honest.proof)
    forged[200] ^= 1
    assert "rules proof (Groth16)" in _failed(audit(dataclasses.replace(honest, proof=bytes(forged))))
    digest = honest.proof[:287] + bytes([honest.proof[287] ^ 1]) + honest.proof[288:]  # words 8: the digest
    assert {"rules proof (Groth16)", "rules"} <= _failed(audit(dataclasses.replace(honest, proof=digest)))
