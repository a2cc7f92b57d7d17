"""The end-to-end marketplace demo: a local chain and IPFS node, an owner, data owners and an aggregator."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from aggregator.round import RoundAggregator
from client.data_owner import DataOwner
from client.owner import TaskTerms, publish_task
from client.training import evaluate
from marketplace.chain.anvil import LocalAnvil, dev_accounts
from marketplace.chain.events import Withdrawn
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.chain.session import ChainSession, connect
from marketplace.data import Dataset, dirichlet_split, load_builtin, split_holdout
from marketplace.ipfs import IpfsClient, LocalIpfsNode
from marketplace.models import ModelSpec, build_model, load_arrays
from marketplace.task_files import TaskFiles
from marketplace.task_spec import TaskSpec
from marketplace.updates import generate_keypair, key_to_hex

ETH = 10**18
OWNER_ACCOUNT, AGGREGATOR_ACCOUNT, FIRST_DATA_OWNER_ACCOUNT = 0, 1, 2


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs; the defaults finish in well under a minute on 2 cores."""

    data_owners: int = 4
    rounds: int = 3
    dataset: str = "digits"
    alpha: float = 0.5
    seed: int = 0
    reward_eth: float = 3.0
    stake_eth: float = 0.1
    round_duration: int = 3600
    hidden: tuple[int, ...] = (32,)
    local_epochs: int = 5
    learning_rate: float = 0.1
    momentum: float = 0.9


@dataclass
class RoundRow:
    round: int
    accuracy: float
    loss: float
    accepted: int
    rejected: int
    bytes_moved: int
    gas: dict[str, int]
    seconds: float


@dataclass
class DemoResult:
    task_id: int
    rows: list[RoundRow]
    gas_by_call: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    payouts: dict[str, int] = field(default_factory=dict)
    refund: int = 0
    escrow: int = 0
    stakes: int = 0
    contract_balance_after: int = 0
    seconds: float = 0.0

    @property
    def final_accuracy(self) -> float:
        return self.rows[-1].accuracy if self.rows else 0.0

    @property
    def conserved(self) -> bool:
        paid = sum(self.payouts.values())
        return self.escrow + self.stakes == paid + self.refund + self.contract_balance_after


@contextmanager
def local_services(console: Console) -> Iterator[tuple[LocalAnvil, LocalIpfsNode]]:
    """Start Anvil and the IPFS node on free loopback ports; stop both whatever happens."""
    with ExitStack() as stack:
        with console.status("starting the local chain (Anvil) and IPFS node"):
            chain = stack.enter_context(LocalAnvil(accounts=40))
            ipfs = stack.enter_context(LocalIpfsNode())
        console.print(f"chain at {chain.rpc_url}, IPFS API at {ipfs.api_url}")
        yield chain, ipfs


def _split_data(config: DemoConfig) -> tuple[Dataset, Dataset, list[Dataset], ModelSpec, object]:
    data, schema = load_builtin(config.dataset)
    train, validation, test = split_holdout(data, val_fraction=0.15, test_fraction=0.2, seed=config.seed)
    parts = dirichlet_split(train.y, config.data_owners, config.alpha, seed=config.seed)
    model = ModelSpec("mlp", schema.num_features, schema.num_classes, config.hidden)
    return validation, test, [train.subset(p) for p in parts], model, schema


def run_demo(config: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run one task end to end on freshly started local services and return what happened."""
    console = console or Console()
    started = time.perf_counter()
    with local_services(console) as (chain, ipfs_node):
        w3 = connect(chain.rpc_url, expected_chain_id=31337)
        keys = dev_accounts(FIRST_DATA_OWNER_ACCOUNT + config.data_owners)
        sessions = [ChainSession(w3, key) for key in keys]
        deployed, _ = MarketplaceContract.deploy(sessions[OWNER_ACCOUNT])
        clients = [IpfsClient(ipfs_node.api_url) for _ in sessions]
        files = [TaskFiles(c) for c in clients]

        validation, test, shards, model_spec, schema = _split_data(config)
        aggregator_private, aggregator_public = generate_keypair()
        owner_contract = deployed.with_session(sessions[OWNER_ACCOUNT])
        aggregator = RoundAggregator(
            deployed.with_session(sessions[AGGREGATOR_ACCOUNT]), files[AGGREGATOR_ACCOUNT], aggregator_private
        )
        data_owners = [
            DataOwner(deployed.with_session(sessions[i]), files[i], shard)
            for i, shard in enumerate(shards, start=FIRST_DATA_OWNER_ACCOUNT)
        ]
        result = _run_task(config, console, owner_contract, files[OWNER_ACCOUNT], aggregator, data_owners,
                           validation, test, model_spec, schema, key_to_hex(aggregator_public))
        for client in clients:
            client.close()
    result.seconds = time.perf_counter() - started
    return result


def _run_task(
    config: DemoConfig,
    console: Console,
    owner: MarketplaceContract,
    owner_files: TaskFiles,
    aggregator: RoundAggregator,
    data_owners: list[DataOwner],
    validation: Dataset,
    test: Dataset,
    model_spec: ModelSpec,
    schema: object,
    aggregator_key_hex: str,
) -> DemoResult:
    terms = TaskTerms(
        reward=int(config.reward_eth * ETH),
        stake=int(config.stake_eth * ETH),
        rounds=config.rounds,
        round_duration=config.round_duration,
        aggregator=aggregator.contract.session.address,
        max_participants=len(data_owners),
    )
    training = {
        "epochs": config.local_epochs, "lr": config.learning_rate, "momentum": config.momentum, "batch_size": 32
    }

    def make_spec(validation_cid: str) -> TaskSpec:
        return TaskSpec(
            name=f"{config.dataset} classifier",
            description=f"MLP on scikit-learn's {config.dataset} data set",
            model=model_spec,
            data_schema=schema,  # type: ignore[arg-type]
            validation_cid=validation_cid,
            aggregator_public_key=aggregator_key_hex,
            training=training,
        )

    published = publish_task(owner, owner_files, make_spec, validation, terms, model_seed=config.seed)
    task_id = published.task_id
    result = DemoResult(task_id=task_id, rows=[], escrow=terms.reward, stakes=terms.stake * len(data_owners))
    result.gas_by_call["createTask"].append(published.create.gas_used)
    console.print(f"task {task_id} published: spec {published.spec_cid}, reward {config.reward_eth} ETH escrowed")

    for data_owner in data_owners:
        result.gas_by_call["join"].append(data_owner.join(task_id).gas_used)
    result.gas_by_call["startTask"].append(owner.start_task(task_id).gas_used)

    every_files = [owner_files, aggregator.files, *(d.files for d in data_owners)]
    eval_model = build_model(model_spec, seed=0)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        rounds_bar = progress.add_task("rounds", total=config.rounds)
        for round_ in range(1, config.rounds + 1):
            round_started = time.perf_counter()
            traffic_before = sum(f.traffic.total for f in every_files)
            gas: dict[str, int] = defaultdict(int)
            step = progress.add_task(f"round {round_}: local training", total=len(data_owners))
            for data_owner in data_owners:
                report = data_owner.train_and_submit(task_id, round_)
                gas["submitUpdate"] += report.submit.gas_used
                result.gas_by_call["submitUpdate"].append(report.submit.gas_used)
                progress.advance(step)
            progress.update(step, description=f"round {round_}: aggregating")
            outcome = aggregator.aggregate_round(task_id, round_)
            gas["finalizeRound"] = outcome.finalize.gas_used
            result.gas_by_call["finalizeRound"].append(outcome.finalize.gas_used)
            if outcome.settle is not None:
                gas["settleRound"] = outcome.settle.gas_used
                result.gas_by_call["settleRound"].append(outcome.settle.gas_used)
            _, spec = aggregator.task(task_id)
            load_arrays(eval_model, aggregator.files.model(outcome.model_cid, spec))
            metrics = evaluate(eval_model, test)
            result.rows.append(
                RoundRow(
                    round=round_,
                    accuracy=metrics["accuracy"],
                    loss=metrics["loss"],
                    accepted=len(outcome.accepted),
                    rejected=len(outcome.rejected),
                    bytes_moved=sum(f.traffic.total for f in every_files) - traffic_before,
                    gas=dict(gas),
                    seconds=time.perf_counter() - round_started,
                )
            )
            progress.remove_task(step)
            progress.advance(rounds_bar)

    for data_owner in data_owners:
        withdrawal = data_owner.withdraw(task_id)
        result.gas_by_call["withdraw"].append(withdrawal.gas_used)
        result.payouts[data_owner.address] = sum(e.amount for e in withdrawal.all(Withdrawn))
    refund = owner.withdraw(task_id)
    result.gas_by_call["refund"].append(refund.gas_used)
    result.refund = refund.first(Withdrawn).amount
    result.contract_balance_after = owner.session.balance(owner.address)
    return result


def render(result: DemoResult, console: Console) -> None:
    """Print the per-round table, the gas per call type and the money check."""
    table = Table(title=f"task {result.task_id}: rounds (accuracy and loss on the held-out test split)")
    for column in ("round", "accuracy", "loss", "kept", "refused", "gas", "bytes", "s"):
        table.add_column(column, justify="right")
    for row in result.rows:
        table.add_row(
            str(row.round), f"{row.accuracy:.3f}", f"{row.loss:.3f}", str(row.accepted), str(row.rejected),
            f"{sum(row.gas.values()):,}", f"{row.bytes_moved:,}", f"{row.seconds:.1f}",
        )  # fmt: skip
    console.print(table)

    gas_table = Table(title="gas per call")
    for column in ("call", "count", "mean gas", "max gas"):
        gas_table.add_column(column, justify="right")
    for call, values in result.gas_by_call.items():
        gas_table.add_row(call, str(len(values)), f"{sum(values) // len(values):,}", f"{max(values):,}")
    console.print(gas_table)

    paid = sum(result.payouts.values())
    verdict = "[green]conserved[/green]" if result.conserved else "[red]NOT conserved[/red]"
    console.print(
        f"money: escrow {result.escrow / ETH:.6f} + stakes {result.stakes / ETH:.6f} ETH = "
        f"paid {paid / ETH:.6f} + refund {result.refund / ETH:.6f} + left in contract "
        f"{result.contract_balance_after / ETH:.6f} ETH: {verdict}"
    )
    console.print(f"final test accuracy {result.final_accuracy:.3f}; demo took {result.seconds:.1f} s")
