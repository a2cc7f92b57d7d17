"""The project owner's side: publish a task (files on IPFS, reward escrowed on chain) and start it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aggregator.protocol import filter_pipeline
from aggregator.proving import DeployedVerifier, deploy_verifier
from marketplace.chain.erc20 import Erc20
from marketplace.chain.marketplace_contract import ETH, CallResult, MarketplaceContract, Rules
from marketplace.chain.marketplace_contract import TaskTerms as ChainTerms
from marketplace.data import Dataset
from marketplace.errors import FedmarketError
from marketplace.models import build_model, model_to_arrays, num_parameters
from marketplace.task_files import TaskFiles
from marketplace.task_spec import ProtocolSpec, TaskSpec

ZERO_ADDRESS = "0x" + "00" * 20


def recorded_rules(rules: Rules, protocol: ProtocolSpec | None, scale_bits: int) -> Rules:
    """What the chain records of a protocol task's α, β and Γ: the protocol's (ProtocolSpec.chain_record), not
    a second set a reader would take for them."""
    return rules if protocol is None else replace(rules, **protocol.chain_record(scale_bits))


@dataclass(frozen=True)
class TaskTerms:
    """The money and schedule of a task, as the contract holds them.

    `round_duration` is each round's submission period; the aggregator gets `aggregation_period` (default: the
    same) after it. No verifier means an explicitly unverified task; a zero dispute window settles at once.
    """

    reward: int
    stake: int
    rounds: int
    round_duration: int
    aggregator: str
    max_participants: int
    min_participants: int = 1
    token: str = ETH
    aggregator_bond: int = 0
    verifier: str = ZERO_ADDRESS
    arbiter: str = ZERO_ADDRESS
    challenge_bond: int = 0
    join_period: int = 7 * 24 * 3600
    aggregation_period: int | None = None
    dispute_window: int = 0
    arbitration_period: int = 0
    rules: Rules = field(default_factory=Rules)

    def on_chain(self) -> ChainTerms:
        return ChainTerms(
            token=self.token,
            reward=self.reward,
            aggregator=self.aggregator,
            stake=self.stake,
            arbiter=self.arbiter,
            aggregator_bond=self.aggregator_bond,
            verifier=self.verifier,
            challenge_bond=self.challenge_bond,
            unverified=int(self.verifier, 16) == 0,
            rounds=self.rounds,
            min_data_owners=self.min_participants,
            max_data_owners=self.max_participants,
            join_period=self.join_period,
            submission_period=self.round_duration,
            aggregation_period=self.aggregation_period or self.round_duration,
            dispute_window=self.dispute_window,
            arbitration_period=self.arbitration_period,
            rules=self.rules,
        )


@dataclass(frozen=True)
class PublishedTask:
    task_id: int
    spec_cid: str
    initial_model_cid: str
    spec: TaskSpec
    create: CallResult
    verifier: DeployedVerifier | None = None  # deployed here for a protocol task (None: given or unverified)


def publish_task(
    contract: MarketplaceContract,
    files: TaskFiles,
    make_spec: Callable[[str], TaskSpec],
    validation: Dataset,
    terms: TaskTerms,
    model_seed: int = 0,
) -> PublishedTask:
    """Upload the validation set, the initial model and the spec; then escrow the reward on chain.

    `make_spec` receives the validation set's CID, which the spec must name. A spec with protocol rules gets
    its verifier here unless `terms.verifier` names one to reuse: the Pedersen verifier (proof "pedersen") or,
    over it, the Groth16 adapter of the spec's rule version (proof "groth16": LinkedRulesRoundVerifier for
    rffl-v2, the default, rffl-v3 and rffl-v4, RulesRoundVerifier for rffl-v1; UNSAFE single-party setup, keys cached;
    the circuit is fixed to n = max_participants, so min_participants must equal it). The published spec names
    the rule version and the verifying key's CID, so auditors know which circuit and checks apply.
    """
    spec = make_spec(files.put_dataset(validation))
    deployed = None
    rules = spec.rules
    if rules is not None:
        filter_pipeline(rules, spec.model)  # a bad filter is refused now, not when the first round is aggregated
    terms = replace(terms, rules=recorded_rules(terms.rules, rules, spec.scale_bits))
    if rules is not None and rules.proof != "none" and int(terms.verifier, 16) == 0:
        if rules.proof == "groth16" and terms.min_participants != terms.max_participants:
            raise FedmarketError(
                "a groth16 task's circuit is built for exactly max_participants data owners",
                hint="set min_participants equal to max_participants",
            )
        deployed = deploy_verifier(contract.session, rules, terms.max_participants, num_parameters(spec.model))
        vk_cid = files.put(deployed.verifying_key.encode()) if deployed.verifying_key else ""
        protocol = replace(rules, verifying_key_cid=vk_cid).to_dict()
        spec = replace(spec, protocol=protocol)
        terms = replace(terms, verifier=deployed.address)
    initial = model_to_arrays(build_model(spec.model, seed=model_seed))
    model_cid = files.put_model(initial, {"round": "0"})
    spec_cid = files.put_spec(spec)
    chain_terms = terms.on_chain()
    if not chain_terms.is_eth:
        Erc20(contract.session, chain_terms.token).approve(contract.address, chain_terms.reward)
    task_id, result = contract.create_task(chain_terms, spec_cid, model_cid)
    return PublishedTask(task_id, spec_cid, model_cid, spec, result, deployed)
