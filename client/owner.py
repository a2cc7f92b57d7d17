"""The project owner's side: publish a task (files on IPFS, reward escrowed on chain) and start it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from marketplace.chain.marketplace_contract import CallResult, MarketplaceContract
from marketplace.data import Dataset
from marketplace.models import build_model, model_to_arrays
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec


@dataclass(frozen=True)
class TaskTerms:
    """The money and schedule of a task, as the contract holds them."""

    reward: int
    stake: int
    rounds: int
    round_duration: int
    aggregator: str
    max_participants: int


@dataclass(frozen=True)
class PublishedTask:
    task_id: int
    spec_cid: str
    initial_model_cid: str
    spec: TaskSpec
    create: CallResult


def publish_task(
    contract: MarketplaceContract,
    files: TaskFiles,
    make_spec: Callable[[str], TaskSpec],
    validation: Dataset,
    terms: TaskTerms,
    model_seed: int = 0,
) -> PublishedTask:
    """Upload the validation set, the initial model and the spec; then escrow the reward on chain.

    `make_spec` receives the validation set's CID, which the spec must name.
    """
    spec = make_spec(files.put_dataset(validation))
    initial = model_to_arrays(build_model(spec.model, seed=model_seed))
    model_cid = files.put_model(initial, {"round": "0"})
    spec_cid = files.put_spec(spec)
    task_id, result = contract.create_task(
        spec_cid=spec_cid,
        initial_model_cid=model_cid,
        reward=terms.reward,
        stake=terms.stake,
        rounds=terms.rounds,
        round_duration=terms.round_duration,
        aggregator=terms.aggregator,
        max_participants=terms.max_participants,
    )
    return PublishedTask(task_id, spec_cid, model_cid, spec, result)
