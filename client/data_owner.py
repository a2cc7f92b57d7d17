"""The data owner's side of a round: fetch the global model, train on private data, seal, upload, submit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from aggregator.proving import pedersen_commitment, poseidon_commitment
from client.training import TrainConfig, model_delta, train_local
from marketplace.chain.erc20 import Erc20
from marketplace.chain.marketplace_contract import ZERO_POINT, CallResult, MarketplaceContract, TaskInfo, TaskStatus
from marketplace.data import Dataset, validate_arrays
from marketplace.errors import FedmarketError
from marketplace.models import build_model, load_arrays, model_to_arrays
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from marketplace.text import utc_text
from marketplace.updates import UpdateHeader, key_from_hex, pack_update, quantize, seal
from zk.commitments import hash_commitment
from zk.groth16.rules import random_salt
from zk.pedersen import random_blinding

UpdateTransform = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class SubmissionReport:
    """What one data owner did in one round."""

    round: int
    update_cid: str
    commitment: bytes
    num_samples: int
    train_loss: float
    plaintext_bytes: int
    sealed_bytes: int
    submit: CallResult
    pedersen: tuple[int, int] = ZERO_POINT
    poseidon: int = 0


class DataOwner:
    """Holds private data and a signing session; never sends the data, only sealed model updates."""

    def __init__(self, contract: MarketplaceContract, files: TaskFiles, data: Dataset) -> None:
        self.contract = contract
        self.files = files
        self.data = data
        self._specs: dict[str, TaskSpec] = {}

    @property
    def address(self) -> str:
        return self.contract.session.address

    def task(self, task_id: int) -> tuple[TaskInfo, TaskSpec]:
        """The task's on-chain state and its spec (fetched once from IPFS)."""
        info = self.contract.get_task(task_id)
        if info.spec_cid not in self._specs:
            self._specs[info.spec_cid] = self.files.spec(info.spec_cid)
        return info, self._specs[info.spec_cid]

    def join(self, task_id: int) -> CallResult:
        """Check the private data fits the task's schema, then join with the stake."""
        info, spec = self.task(task_id)
        validate_arrays(self.data.X, self.data.y, spec.data_schema)
        self._check_joinable(info)
        if not info.terms.is_eth:
            Erc20(self.contract.session, info.terms.token).approve(self.contract.address, info.stake)
            return self.contract.join(task_id, 0)
        return self.contract.join(task_id, info.stake)

    def _check_joinable(self, info: TaskInfo) -> None:
        """What the contract would refuse, said plainly and before a token approval is spent on it."""
        task = f"task {info.task_id}"
        if info.status is not TaskStatus.OPEN:
            raise FedmarketError(f"{task} is {info.status.name.lower()}: joining closed when it started",
                                 hint="see `fedmarket task list` for tasks open for joining")  # fmt: skip
        if self.contract.get_participant(info.task_id, self.address).joined:
            raise FedmarketError(f"{self.address} has already joined {task}",
                                 hint=f"next: `fedmarket run {info.task_id} --data FILE`")  # fmt: skip
        if info.data_owners >= info.terms.max_data_owners:
            raise FedmarketError(f"{task} is full ({info.data_owners} of {info.terms.max_data_owners} data owners)")
        now = self.contract.session.w3.eth.get_block("latest")["timestamp"]
        if now > info.join_deadline:
            raise FedmarketError(f"{task}'s joining period ended at {utc_text(info.join_deadline)}",
                                 hint="the owner starts the task, or cancels it, from here")  # fmt: skip

    def open_round(self, task_id: int, round_: int) -> tuple[TaskInfo, TaskSpec]:
        """The task and its spec, if it is taking updates for `round_`; a clear error otherwise."""
        info, spec = self.task(task_id)
        if info.status is not TaskStatus.RUNNING or info.current_round != round_:
            raise FedmarketError(
                f"task {task_id} is not taking updates for round {round_} "
                f"(status {info.status.name.lower()}, open round {info.current_round})"
            )
        return info, spec

    def train_update(
        self, task_id: int, round_: int, progress: Callable[[int, int], None] | None = None
    ) -> tuple[dict[str, np.ndarray], float]:
        """Train from the round's global model on the private data; returns (float deltas, final loss)."""
        info, spec = self.open_round(task_id, round_)
        global_arrays = self.files.model(info.model_cid, spec)
        model = build_model(spec.model, seed=0)
        load_arrays(model, global_arrays)
        config = replace(TrainConfig.from_dict(spec.training), seed=self._seed(task_id, round_))
        loss = train_local(model, self.data, config, progress)
        return model_delta(model_to_arrays(model), global_arrays), loss

    def train_and_submit(
        self, task_id: int, round_: int, progress: Callable[[int, int], None] | None = None,
        transform: UpdateTransform | None = None,
    ) -> SubmissionReport:
        """Run one round: train from the current global model and record the sealed update on chain."""
        delta, loss = self.train_update(task_id, round_, progress)
        if transform is not None:
            delta = transform(delta)
        return self.submit_delta(task_id, round_, delta, loss)

    def submit_delta(self, task_id: int, round_: int, delta: dict[str, np.ndarray], loss: float) -> SubmissionReport:
        """Quantize, commit, seal to the aggregator's key, upload and record one update for `round_`."""
        _, spec = self.open_round(task_id, round_)
        header = UpdateHeader(
            task_id=task_id, round=round_, num_samples=len(self.data), scale_bits=spec.scale_bits, sender=self.address
        )
        rules = spec.rules
        point, poseidon = ZERO_POINT, 0
        if rules is None:  # legacy task: hash commitment only
            qarrays = quantize(delta, spec.scale_bits, spec.bound)
        else:
            # the circuit's range: clip each coordinate rather than refuse a large local step
            limit = rules.bound / float(1 << spec.scale_bits)
            delta = {name: np.clip(array, -limit, limit) for name, array in delta.items()}
            qarrays = quantize(delta, spec.scale_bits, min(spec.bound, rules.bound))
            flat = np.concatenate([qarrays[name].reshape(-1) for name in spec.shapes]).astype(np.int64)
            blinding, salt = random_blinding(), random_salt()
            point = pedersen_commitment(flat, blinding, rules)
            poseidon = poseidon_commitment(flat, salt, rules)
            header = replace(header, blinding=blinding, salt=salt)  # sealed: only the aggregator learns them
        plaintext = pack_update(header, qarrays)
        sealed = seal(plaintext, key_from_hex(spec.aggregator_public_key))
        commitment = hash_commitment(plaintext)
        cid = self.files.put(sealed)
        submit = self.contract.submit_update(task_id, round_, cid, commitment, point, poseidon)
        return SubmissionReport(
            round_, cid, commitment, len(self.data), loss, len(plaintext), len(sealed), submit, point, poseidon
        )

    def is_removed(self, task_id: int) -> bool:
        """True once the task's rules removed this data owner (it can no longer submit)."""
        info = self.contract.get_task(task_id)
        index = self.contract.get_participant(task_id, self.address).index
        return bool(info.removed_mask >> index & 1)

    def withdraw(self, task_id: int) -> CallResult:
        """Take out the task's rewards and stake once it is closed (pull payment)."""
        return self.contract.withdraw(task_id)

    def _seed(self, task_id: int, round_: int) -> int:
        return (int(self.address, 16) ^ (task_id << 32) ^ round_) % (2**31)
