"""The aggregator's round: fetch every submitted update, open and check it, aggregate, publish, finalize."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aggregator.fedavg import apply_weighted_updates, sample_weights
from aggregator.record import RoundRecord
from marketplace.chain.events import UpdateSubmitted
from marketplace.chain.marketplace_contract import (
    REPUTATION_ONE,
    ZERO_POINT,
    CallResult,
    MarketplaceContract,
    RoundReport,
    TaskInfo,
    TaskStatus,
)
from marketplace.data import Dataset
from marketplace.errors import FedmarketError, ServiceUnavailableError
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from marketplace.updates import (
    UpdateHeader,
    dequantize,
    key_to_hex,
    open_sealed,
    public_key_from_private,
    unpack_update,
)
from zk.commitments import check_hash_commitment

# Updates are scored on the raw sample counts they report; the contract takes integers.
CONTRIBUTION_UNIT = 1


@dataclass(frozen=True)
class Rejection:
    """An update left out of a round, and why; the round goes on without it."""

    data_owner: str
    update_cid: str
    reason: str


@dataclass(frozen=True)
class AcceptedUpdate:
    data_owner: str
    update_cid: str
    header: UpdateHeader
    delta: dict[str, np.ndarray]
    q: np.ndarray | None = None  # the quantized update, flat in canonical tensor order (int64)


@dataclass(frozen=True)
class RoundResult:
    task_id: int
    round: int
    model_cid: str
    accepted: list[AcceptedUpdate]
    rejected: list[Rejection]
    contributions: list[int]
    finalize: CallResult
    settle: CallResult | None = None
    record: RoundRecord | None = None  # protocol rounds: what auditors re-check
    record_cid: str = ""
    timings: dict[str, float] = field(default_factory=dict)


class RoundAggregator:
    """Holds the aggregator's X25519 key and its chain session for the tasks it serves."""

    def __init__(
        self, contract: MarketplaceContract, files: TaskFiles, private_key: bytes, key_cache: str | None = None
    ) -> None:
        self.contract = contract
        self.files = files
        self._private_key = private_key
        self._specs: dict[str, TaskSpec] = {}
        self._validation: dict[str, Dataset] = {}
        self.key_cache = key_cache  # where Groth16 keys are cached (None: zk.cache's default)
        # task → (its last round this aggregator posted, that round's accepted updates by participant index):
        # the previous updates a rule comparing an owner with itself reads next round, so they are not fetched,
        # decrypted and checked against their commitments a second time (aggregator.protocol.previous_updates)
        self.posted_updates: dict[int, tuple[int, dict[int, AcceptedUpdate]]] = {}

    def validation(self, spec: TaskSpec) -> Dataset:
        """The owner's validation set (fetched once per task): the utility of Shapley contributions."""
        if spec.validation_cid not in self._validation:
            self._validation[spec.validation_cid] = self.files.validation_set(spec)
        return self._validation[spec.validation_cid]

    def task(self, task_id: int) -> tuple[TaskInfo, TaskSpec]:
        info = self.contract.get_task(task_id)
        if info.spec_cid not in self._specs:
            self._specs[info.spec_cid] = self.files.spec(info.spec_cid)
        return info, self._specs[info.spec_cid]

    def unservable(self, task_id: int) -> str | None:
        """Why this aggregator must not serve the task (None when it may): the chain names another aggregator,
        or the spec has data owners seal updates to another X25519 key, so none would open and every one would
        be refused, the owners paying for our mistake."""
        info, spec = self.task(task_id)
        me = self.contract.session.address
        if info.terms.aggregator.lower() != me.lower():
            return f"task {task_id}'s aggregator is {info.terms.aggregator}, not {me}"
        mine = key_to_hex(public_key_from_private(self._private_key))
        if spec.aggregator_public_key.lower() != mine.lower():
            return (f"task {task_id} has updates sealed to X25519 key {spec.aggregator_public_key}, "
                    f"not to this key ({mine}): load the key file the task was published with")  # fmt: skip
        return None

    def ready(self, task_id: int, round_: int) -> bool:
        """True once every participant submitted or the round's deadline has passed."""
        info = self.contract.get_task(task_id)
        if info.status is not TaskStatus.RUNNING or info.current_round != round_:
            return False
        state = self.contract.get_round(task_id, round_)
        now = self.contract.session.w3.eth.get_block("latest")["timestamp"]
        return state.submitted == info.data_owners - info.removed_count or now > state.submit_deadline

    def collect(self, task_id: int, round_: int) -> tuple[list[AcceptedUpdate], list[Rejection]]:
        """Fetch, decrypt and validate each submission recorded on chain for the round."""
        _, spec = self.task(task_id)
        accepted: list[AcceptedUpdate] = []
        rejected: list[Rejection] = []
        seen_hashes: set[bytes] = set()
        for event in self.contract.events("UpdateSubmitted", taskId=task_id, round=round_):
            assert isinstance(event, UpdateSubmitted)
            try:
                if event.content_hash in seen_hashes:
                    raise FedmarketError("the same update was already submitted by another data owner")
                update = self._open(event, spec, task_id, round_)
            except ServiceUnavailableError:
                # our node or the chain failed, not the submission: the round is retried and nobody is judged on
                # it. Content that cannot be fetched is the uploader's fault and fails as IpfsError (see
                # require_every_block)
                raise
            except FedmarketError as exc:
                rejected.append(Rejection(event.data_owner, event.update_cid, str(exc)))
                continue
            seen_hashes.add(event.content_hash)
            accepted.append(update)
        return accepted, rejected

    def _open(self, event: UpdateSubmitted, spec: TaskSpec, task_id: int, round_: int) -> AcceptedUpdate:
        sealed = self.files.get(event.update_cid, spec.max_sealed_update_bytes)
        plaintext = open_sealed(sealed, self._private_key)
        check_hash_commitment(plaintext, event.content_hash)
        header, values = unpack_update(
            plaintext,
            expected_shapes=spec.shapes,
            scale_bits=spec.scale_bits,
            bound=spec.bound,
            max_bytes=spec.max_update_bytes,
            expected_task_id=task_id,
            expected_round=round_,
        )
        if header.sender.lower() != event.data_owner.lower():
            raise FedmarketError(f"update names sender {header.sender}, but {event.data_owner} submitted it")
        flat = np.concatenate([values[name].reshape(-1) for name in spec.shapes]).astype(np.int64)
        return AcceptedUpdate(event.data_owner, event.update_cid, header, dequantize(values, spec.scale_bits), flat)

    def aggregate_round(self, task_id: int, round_: int) -> RoundResult:
        """Run one round: the protocol round when the spec has rules, else FedAvg on an unverified task."""
        info, spec = self.task(task_id)
        if spec.rules is not None:
            from aggregator.protocol import run_protocol_round

            return run_protocol_round(self, task_id, round_)
        accepted, rejected = self.collect(task_id, round_)
        if accepted:
            weights = sample_weights([u.header.num_samples for u in accepted])
            new_model = apply_weighted_updates(
                self.files.model(info.model_cid, spec), [u.delta for u in accepted], weights
            )
            model_cid = self.files.put_model(new_model, {"task_id": str(task_id), "round": str(round_)})
        else:
            model_cid = info.model_cid  # nothing usable arrived: the global model stays as it was
        samples = {u.data_owner.lower(): u.header.num_samples for u in accepted}
        participants = self.contract.get_participants(task_id)
        contributions = [samples.get(p.lower(), 0) * CONTRIBUTION_UNIT for p in participants]
        # every submission's commitments go back as recorded; weights: FedAvg's sample counts, 0 = left out
        submitted = self.contract.submissions(task_id, round_)
        indices = range(len(participants))
        report = RoundReport(
            model_cid=model_cid,
            commitments=tuple(submitted[i].commitment if i in submitted else ZERO_POINT for i in indices),
            poseidons=tuple(submitted[i].poseidon if i in submitted else 0 for i in indices),
            weights=tuple(contributions),
            reputations=tuple(REPUTATION_ONE if c else 0 for c in contributions),
            contributions=tuple(contributions),
        )
        finalize = self.contract.finalize_round(task_id, round_, report)
        settle = None
        if info.terms.dispute_window == 0:  # no dispute window: the round's money can move at once
            settle = self.contract.settle_round(task_id, round_, report.contributions)
        return RoundResult(task_id, round_, model_cid, accepted, rejected, contributions, finalize, settle)
