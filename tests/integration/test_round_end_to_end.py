"""Whole rounds on real Anvil, a real IPFS node and real PyTorch training, including hostile submissions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from protocol_support.unixfs import file_root_block
from rich.console import Console

from aggregator.round import RoundAggregator
from client.commands.aggregate import RoundLog
from client.data_owner import DataOwner
from client.demo import DemoConfig, run_demo
from client.owner import TaskTerms, publish_task
from marketplace.chain.marketplace_contract import MarketplaceContract, TaskStatus
from marketplace.chain.session import ChainSession
from marketplace.data import dirichlet_split, load_builtin, split_holdout
from marketplace.errors import UpdateFormatError
from marketplace.ipfs import IpfsClient, normalize_cid
from marketplace.models import ModelSpec
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from marketplace.updates import (
    UpdateHeader,
    encode_tensors,
    generate_keypair,
    key_to_hex,
    pack_update,
    quantize,
    seal,
)
from zk.commitments import hash_commitment

pytestmark = pytest.mark.integration

SessionFor = Callable[[int], ChainSession]
OWNER, AGGREGATOR = 0, 1


def test_demo_reaches_accuracy_and_conserves_money() -> None:
    result = run_demo(DemoConfig(data_owners=3, rounds=3), Console(quiet=True))
    assert [row.round for row in result.rows] == [1, 2, 3]
    assert all(row.accepted == 3 and row.left_out == 0 for row in result.rows)
    assert result.report_path is not None
    round_log = result.report_path.parent / "aggregator-rounds.jsonl"  # what the refusals are read from
    assert [e["rejections"] for e in RoundLog(round_log).entries("finalized")] == [[], [], []]
    assert result.refusals == []
    assert "updates refused by the aggregator: none" in result.report_path.read_text()
    assert result.final_accuracy >= 0.85
    assert result.rows[-1].accuracy > result.rows[0].accuracy
    assert result.conserved and result.contract_balance_after == 0
    assert sum(result.payouts.values()) + result.refund == result.escrow + result.stakes
    # every round's finalize and settle gas, the last round's settlement included (it lands after its model)
    assert len(result.gas_by_call["finalizeRound"]) == len(result.gas_by_call["settleRound"]) == 3
    assert all(row.gas["settleRound"] > 0 for row in result.rows)


@dataclass
class Market:
    task_id: int
    spec: TaskSpec
    contract: MarketplaceContract
    aggregator: RoundAggregator
    honest: list[DataOwner]
    hostile: list[MarketplaceContract]
    files: TaskFiles


@pytest.fixture
def market(marketplace: MarketplaceContract, session_for: SessionFor, ipfs: IpfsClient) -> Market:
    data, schema = load_builtin("digits")
    train, validation, _ = split_holdout(data, val_fraction=0.15, test_fraction=0.2, seed=0)
    shards = [train.subset(p) for p in dirichlet_split(train.y, 2, 0.5, seed=0)]
    private, public = generate_keypair()
    files = TaskFiles(ipfs)

    def make_spec(validation_cid: str) -> TaskSpec:
        return TaskSpec(
            name="digits",
            model=ModelSpec("mlp", schema.num_features, schema.num_classes, (16,)),
            data_schema=schema,
            validation_cid=validation_cid,
            aggregator_public_key=key_to_hex(public),
            training={"epochs": 1, "lr": 0.1},
        )

    n_hostile = 7
    terms = TaskTerms(10**18, 10**16, 1, 3600, session_for(AGGREGATOR).address, 2 + n_hostile)
    published = publish_task(marketplace, files, make_spec, validation, terms)
    honest = [DataOwner(marketplace.with_session(session_for(2 + i)), files, s) for i, s in enumerate(shards)]
    hostile = [marketplace.with_session(session_for(10 + i)) for i in range(n_hostile)]
    for member in honest:
        member.join(published.task_id)
    for contract in hostile:
        contract.join(published.task_id, terms.stake)
    marketplace.start_task(published.task_id)
    aggregator = RoundAggregator(marketplace.with_session(session_for(AGGREGATOR)), files, private)
    return Market(published.task_id, published.spec, marketplace, aggregator, honest, hostile, files)


def _honest_update(market: Market, sender: str, scale: float = 0.01) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {name: (scale * rng.standard_normal(shape)).astype(np.float32) for name, shape in market.spec.shapes.items()}


def _sealed(market: Market, plaintext: bytes) -> bytes:
    from marketplace.updates import key_from_hex

    return seal(plaintext, key_from_hex(market.spec.aggregator_public_key))


def test_hostile_submissions_are_rejected_and_the_round_goes_on(market: Market) -> None:
    task_id, spec = market.task_id, market.spec
    reports = [owner.train_and_submit(task_id, 1) for owner in market.honest]
    wrong_shape, nan_payload, mismatch, missing, garbage, copier, stalling = market.hostile

    def header(contract: MarketplaceContract) -> UpdateHeader:
        return UpdateHeader(task_id, 1, 100, spec.scale_bits, contract.session.address)

    # a tensor of the wrong shape
    arrays = _honest_update(market, wrong_shape.session.address)
    first = next(iter(arrays))
    arrays[first] = arrays[first][:-1]
    plaintext = pack_update(header(wrong_shape), quantize(arrays, spec.scale_bits))
    wrong_shape.submit_update(task_id, 1, market.files.put(_sealed(market, plaintext)), hash_commitment(plaintext))

    # float tensors holding NaN, hand-built past the client's own checks
    arrays = _honest_update(market, nan_payload.session.address)
    arrays[first][0] = np.nan
    plaintext = encode_tensors(arrays, header(nan_payload).to_metadata() | {"format": "fedmarket-update"})
    nan_payload.submit_update(task_id, 1, market.files.put(_sealed(market, plaintext)), hash_commitment(plaintext))

    # a commitment that does not match the uploaded content
    plaintext = pack_update(header(mismatch), quantize(_honest_update(market, ""), spec.scale_bits))
    mismatch.submit_update(task_id, 1, market.files.put(_sealed(market, plaintext)), hash_commitment(b"other"))

    # a CID the IPFS node does not hold
    absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    missing.submit_update(task_id, 1, absent, hash_commitment(b"x"))

    # bytes that were not sealed to the aggregator's key
    garbage.submit_update(task_id, 1, market.files.put(b"\x00" * 200), hash_commitment(b"\x00" * 200))

    # a copy of an honest owner's submission
    copier.submit_update(task_id, 1, reports[0].update_cid, reports[0].commitment)

    # a file whose root block the node holds but one of whose blocks nobody holds: every fetch of it stalls
    stalled = _cid_with_a_missing_block(market.files.ipfs.api_url)
    stalling.submit_update(task_id, 1, stalled, hash_commitment(b"never seen"))

    outcome = market.aggregator.aggregate_round(task_id, 1)
    assert sorted(u.data_owner for u in outcome.accepted) == sorted(o.address for o in market.honest)
    reasons = {r.data_owner: r.reason for r in outcome.rejected}
    assert "shape" in reasons[wrong_shape.session.address]
    assert "non-finite" in reasons[nan_payload.session.address]
    assert "committed on chain" in reasons[mismatch.session.address]
    assert "not on the IPFS node" in reasons[missing.session.address]
    assert "decrypt" in reasons[garbage.session.address].lower() or "open" in reasons[garbage.session.address]
    assert "already submitted" in reasons[copier.session.address]
    assert "a block of CID" in reasons[stalling.session.address]  # refused, and the node is still up:
    assert market.files.ipfs.version()

    # only the honest owners were credited; the task finished and the new model is on IPFS
    participants = market.contract.get_participants(task_id)
    credited = {p for p, c in zip(participants, outcome.contributions, strict=True) if c}
    assert credited == {o.address for o in market.honest}
    info = market.contract.get_task(task_id)
    assert info.status is TaskStatus.FINISHED and info.model_cid == outcome.model_cid
    assert market.files.model(outcome.model_cid, spec).keys() == spec.shapes.keys()


def _cid_with_a_missing_block(api_url: str) -> str:
    """A file whose root block is put on the node by itself: its one chunk was never stored anywhere."""
    root = file_root_block([b"a block nobody stores" * 8])
    answer = httpx.post(f"{api_url}/api/v0/block/put", params={"cid-codec": "dag-pb", "mhtype": "sha2-256"},
                        files={"file": ("root", root)})  # fmt: skip
    answer.raise_for_status()
    return normalize_cid(answer.json()["Key"])


def test_client_refuses_nan_update(market: Market) -> None:
    arrays = _honest_update(market, "")
    arrays[next(iter(arrays))][0] = np.inf
    with pytest.raises(UpdateFormatError, match="non-finite"):
        quantize(arrays, market.spec.scale_bits)


def test_submitting_twice_or_late_is_refused(market: Market) -> None:
    from marketplace.errors import ContractRevert

    owner = market.honest[0]
    owner.train_and_submit(market.task_id, 1)
    with pytest.raises(ContractRevert, match="AlreadySubmitted"):
        owner.train_and_submit(market.task_id, 1)
