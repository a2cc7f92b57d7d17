"""The end-to-end marketplace demo: local chain and IPFS node, an owner, honest and attacking data owners (one
thread each), the aggregator daemon as a separate `fedmarket aggregate run` process running the protocol round
(commitments, robust filters, RFFL reputations and removals, Shapley pay, Groth16 rules proof unless --fast),
a live display, the independent auditor (client.audit.audit_task) and a report.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from aggregator import attacks
from client.accounts import PASSWORD_ENV, create_x25519_key, load_x25519_key
from client.audit import audit_task
from client.commands.aggregate import RoundLog
from client.commands.audit import Check, report_checks
from client.commands.views import RoundView, round_views
from client.data_owner import DataOwner, UpdateTransform
from client.owner import TaskTerms, publish_task
from client.report import OwnerLine, ReportData, write_report
from client.training import evaluate
from client.training_cli import FollowEvent, follow_task
from marketplace.chain.anvil import LocalAnvil, dev_accounts
from marketplace.chain.events import Withdrawn
from marketplace.chain.marketplace_contract import MarketplaceContract, TaskStatus
from marketplace.chain.session import ChainSession, connect
from marketplace.data import Dataset, dirichlet_split, load_builtin, split_holdout
from marketplace.errors import FedmarketError
from marketplace.ipfs import IpfsClient, LocalIpfsNode
from marketplace.models import ModelSpec, build_model, load_arrays
from marketplace.service.server import running_service
from marketplace.service.settings import ServiceSettings
from marketplace.task_files import TaskFiles
from marketplace.task_spec import CAPPED_VERSIONS, LINKED_VERSIONS, PROOF_MODES, RULE_VERSIONS, ProtocolSpec, TaskSpec
from marketplace.updates import key_to_hex, public_key_from_private

ETH = 10**18
OWNER_ACCOUNT, AGGREGATOR_ACCOUNT, FIRST_DATA_OWNER_ACCOUNT = 0, 1, 2
DEMO_PASSWORD = "demo-only-not-secret"
ATTACKS = ("free_rider", "sign_flip", "scaling", "gaussian")


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs. Library defaults are a small honest layer-1 (Pedersen) run; `fedmarket demo` asks
    for the full one (10 owners, 3 attackers, 10 rounds, Groth16)."""

    data_owners: int = 4
    rounds: int = 3
    dataset: str = "digits"
    alpha: float = 0.5
    seed: int = 0
    attackers: tuple[str, ...] = ()  # one attack kind per attacking data owner (the last owners attack)
    proof: str = "pedersen"  # groth16 | pedersen | none (ProtocolSpec.proof)
    rule_version: str = "rffl-v3"  # Groth16 rule version: rffl-v3 (rffl-v2 + proven norm filter), rffl-v4 (+ proven
    # missing score), rffl-v2 or rffl-v1
    filter_threshold: str = "0"  # the proven cosine filter τ: drop updates pointing away from the reference
    norm_ratio: str = "2"  # rffl-v3's proven norm filter: drop updates over k × the round's median norm (honest
    # digits updates stay within 0.6-1.25 × the median in every round of the demo; 10× scaled ones reach 7.7 ×)
    missing_score: str = "0"  # what a silent owner scores and caps a dropped update at (rffl-v4 proves it; --fast
    # runs it unproven; rffl-v2 and rffl-v3 prove 0)
    report_dir: Path | None = None
    live: bool = False
    dashboard: bool = True  # index the chain and serve the web dashboard while the demo runs
    keep_open: bool = False  # after the report, keep chain, IPFS node and dashboard up until Ctrl-C
    reward_eth: float = 3.0
    stake_eth: float = 0.1
    round_duration: int = 3600
    hidden: tuple[int, ...] = ()  # () = logistic regression (digits: 650 parameters, what Groth16 can afford)
    local_epochs: int = 5
    learning_rate: float = 0.1
    momentum: float = 0.9
    scale_bits: int = 12  # fixed point: 1/4096 resolution, |coordinate| < 2^(value_bits - scale_bits) = 16
    value_bits: int = 16
    gamma: float = 8.0  # RFFL clip norm Γ (honest digits steps have norm 2-10; a scaled attack is clipped to it)
    rffl_alpha: str = "0.5"
    rffl_beta: str = "1/3"
    outlier_k: float = 4.0  # norm_outlier filter: flags updates whose norm is k robust deviations off
    timeout_s: float = 900.0

    def __post_init__(self) -> None:
        unknown = [k for k in self.attackers if k not in ATTACKS]
        if unknown:
            raise ValueError(f"unknown attack(s) {', '.join(unknown)}; choose from {', '.join(ATTACKS)}")
        if len(self.attackers) >= self.data_owners:
            raise ValueError("at least one data owner must be honest")
        if self.proof not in PROOF_MODES:
            raise ValueError(f"unknown proof mode {self.proof!r}; choose from {', '.join(PROOF_MODES)}")
        if self.rule_version not in RULE_VERSIONS:
            raise ValueError(f"unknown rule version {self.rule_version!r}; choose from {', '.join(RULE_VERSIONS)}")
        try:
            self.rules  # noqa: B018  (checks the protocol options together, before anything starts)
        except FedmarketError as exc:
            raise ValueError(str(exc)) from None

    @property
    def linked(self) -> bool:
        return self.proof == "groth16" and self.rule_version in LINKED_VERSIONS

    @property
    def rules(self) -> ProtocolSpec:
        """rffl-v2 filters with its own proven cosine filter (τ), rffl-v3 also with its proven norm filter (k), rffl-v4
        also proves the missing score, and the Pedersen and unverified modes run the same filters and missing score
        unproven; rffl-v1 filters with the norm_outlier filter."""
        version = self.rule_version if self.proof == "groth16" else ""
        common = {"proof": self.proof, "value_bits": self.value_bits, "gamma": self.gamma, "alpha": self.rffl_alpha,
                  "beta": self.rffl_beta, "rule_version": version, "missing_score": self.missing_score}  # fmt: skip
        if version == "rffl-v1":
            return ProtocolSpec(**common, filters=({"name": "norm_outlier", "k": self.outlier_k},))  # type: ignore[arg-type]
        normed = {} if version == "rffl-v2" else {"norm_ratio": self.norm_ratio}
        return ProtocolSpec(**common, filter_threshold=self.filter_threshold, **normed)  # type: ignore[arg-type]

    @property
    def proof_text(self) -> str:
        if self.proof == "groth16":
            what = {"rffl-v4": "rule version rffl-v4: rules, proven cosine and norm filters and missing score, "
                               "Poseidon-Pedersen link",
                    "rffl-v3": "rule version rffl-v3: rules, proven cosine and norm filters, Poseidon-Pedersen link",
                    "rffl-v2": "rule version rffl-v2: rules, proven cosine filter, Poseidon-Pedersen link"}.get(
                self.rule_version, "rule version rffl-v1: rules only")  # fmt: skip
            return f"Pedersen commitments + Groth16 rules proof ({what}; UNSAFE single-party dev setup)"
        return {"pedersen": "Pedersen commitments only (--fast)", "none": "none"}[self.proof]

    @property
    def filter_text(self) -> str:
        if self.linked:
            if self.rule_version in CAPPED_VERSIONS:
                missing = f", missing score {self.missing_score}" if self.rule_version == "rffl-v4" else ""
                return (f"proven cosine filter τ={self.filter_threshold}, norm filter k={self.norm_ratio}{missing} "
                        f"({self.rule_version})")  # fmt: skip
            return f"proven cosine filter τ={self.filter_threshold} (rffl-v2)"
        if self.proof != "groth16":
            missing = "" if self.missing_score == "0" else f", missing score {self.missing_score}"
            return f"cosine filter τ={self.filter_threshold}, norm filter k={self.norm_ratio}{missing} (unproven)"
        return f"norm_outlier k={self.outlier_k}"


@dataclass
class RoundRow:
    round: int
    accuracy: float
    loss: float
    accepted: int
    left_out: int  # submitted but weighted 0: dropped by a rule, or refused (the round log says which)
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
    owners: list[OwnerLine] = field(default_factory=list)
    audit: list[Check] = field(default_factory=list)
    report_path: Path | None = None
    dashboard_url: str | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)
    verifier: str = ""
    slashed: dict[str, int] = field(default_factory=dict)  # data owner -> wei slashed
    prove_seconds: list[float] = field(default_factory=list)  # the aggregator's Groth16 proving time per round
    refusals: list[str] = field(default_factory=list)  # "round r: owner: reason", from the aggregator's round log

    @property
    def final_accuracy(self) -> float:
        return self.rows[-1].accuracy if self.rows else 0.0

    @property
    def conserved(self) -> bool:
        paid = sum(self.payouts.values())
        return self.escrow + self.stakes == paid + self.refund + self.contract_balance_after

    @property
    def audit_passed(self) -> bool:
        return bool(self.audit) and all(c.passed for c in self.audit)


@contextmanager
def local_services(console: Console) -> Iterator[tuple[LocalAnvil, LocalIpfsNode]]:
    """Start Anvil and the IPFS node on free loopback ports; stop both whatever happens."""
    with ExitStack() as stack:
        with console.status("starting the local chain (Anvil) and IPFS node"):
            chain = stack.enter_context(LocalAnvil(accounts=40))
            ipfs = stack.enter_context(LocalIpfsNode())
        console.print(f"chain at {chain.rpc_url}, IPFS API at {ipfs.api_url}")
        yield chain, ipfs


def attack_transform(kind: str, seed: int) -> UpdateTransform:
    """The update an attacker sends instead of its honest one (aggregator.attacks on the flat vector)."""
    rng = np.random.default_rng(seed)

    def apply(flat: np.ndarray) -> np.ndarray:
        if kind == "free_rider":
            return attacks.free_rider_random(flat.size, rng, -0.05, 0.05)
        if kind == "sign_flip":
            return attacks.sign_flip(flat, 2.0)
        if kind == "scaling":
            return attacks.scaling(flat, 10.0)
        return attacks.gaussian_noise(flat, 0.1, rng)

    def transform(delta: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = list(delta)
        flat = apply(np.concatenate([delta[n].ravel() for n in names]).astype(np.float32))
        out, start = {}, 0
        for name in names:
            size = delta[name].size
            out[name] = flat[start : start + size].reshape(delta[name].shape).astype(np.float32)
            start += size
        return out

    return transform


def _split(config: DemoConfig) -> tuple[Dataset, Dataset, list[Dataset], ModelSpec, object]:
    data, schema = load_builtin(config.dataset)
    train, validation, test = split_holdout(data, val_fraction=0.15, test_fraction=0.2, seed=config.seed)
    parts = dirichlet_split(train.y, config.data_owners, config.alpha, seed=config.seed)
    kind = "mlp" if config.hidden else "logreg"
    model = ModelSpec(kind, schema.num_features, schema.num_classes, config.hidden)
    return validation, test, [train.subset(p) for p in parts], model, schema


def _aggregator_process(chain: LocalAnvil, ipfs: LocalIpfsNode, market: str, key_file: Path, task_id: int,
                        folder: Path) -> subprocess.Popen[bytes]:  # fmt: skip
    """`fedmarket aggregate run` as its own process, signing with dev account 1."""
    command = [
        sys.executable, "-m", "client.cli", "--rpc-url", chain.rpc_url, "--ipfs-api", ipfs.api_url,
        "--marketplace", market, "--dev-account", str(AGGREGATOR_ACCOUNT), "--json",
        "aggregate", "run", "--x25519-key", str(key_file), "--task", str(task_id), "--poll", "0.2",
        "--state-file", str(folder / "aggregator-rounds.jsonl"),
    ]  # fmt: skip
    env = os.environ | {PASSWORD_ENV: DEMO_PASSWORD}
    log = open(folder / "aggregator.log", "wb")  # noqa: SIM115 - handed to the child, closed by the OS at exit
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


class Display:
    """The live view: rounds (accuracy, kept, gas) and data owners (kind, reputation, credited, removed)."""

    def __init__(self, labels: list[str], kinds: list[str], addresses: list[str]) -> None:
        self.labels, self.kinds, self.addresses = labels, kinds, addresses
        self.rows: list[RoundRow] = []
        self.views: list[RoundView] = []
        self.events: list[str] = []

    def render(self) -> Group:
        rounds = Table(title="rounds")
        for column in ("round", "accuracy", "kept", "left out", "removed", "gas", "s"):
            rounds.add_column(column, justify="right")
        for row, view in zip(self.rows, self.views, strict=False):
            rounds.add_row(str(row.round), f"{row.accuracy:.3f}", str(row.accepted), str(row.left_out),
                           ",".join(self.labels[i] for i in view.removed) or "-",
                           f"{view.finalize_gas + view.settle_gas:,}", f"{row.seconds:.1f}")  # fmt: skip
        owners = Table(title="data owners")
        for column in ("owner", "kind", "reputation", "credited (ETH)", "slashed (ETH)", "status"):
            owners.add_column(column)
        credited: dict[int, int] = defaultdict(int)
        slashed: dict[int, int] = defaultdict(int)
        removed_at: dict[int, int] = {}
        for view in self.views:
            for i in view.removed:
                removed_at.setdefault(i, view.round)
        last = self.views[-1] if self.views else None
        for i, (label, kind) in enumerate(zip(self.labels, self.kinds, strict=True)):
            for view in self.views:
                credited[i] += sum(v for k, v in view.credited.items() if k == self.addresses[i])
                slashed[i] += sum(v for k, v in view.slashed.items() if k == self.addresses[i])
            reputation = f"{last.reputations[i]:.3f}" if last and last.reputations else "-"
            status = f"removed r{removed_at[i]}" if i in removed_at else "active"
            style = "red" if i in removed_at else ""
            owners.add_row(label, kind, reputation, f"{credited[i] / ETH:.4f}",
                           f"{slashed[i] / ETH:.4f}" if slashed[i] else "-", status, style=style)  # fmt: skip
        events = [Text(line) for line in self.events[-3:]]
        # a trailing empty line: a non-terminal Live leaves its last line open, and the report would start on it
        return Group(rounds, owners, *events, *([Text("")] if events else []))


def run_demo(config: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run one task end to end on freshly started local services and return what happened."""
    console = console or Console()
    started = time.perf_counter()
    torch.set_num_threads(1)  # one thread per data owner; more would fight over the cores
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = config.report_dir or Path("reports") / f"demo-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    with (
        local_services(console) as (chain, ipfs_node),
        tempfile.TemporaryDirectory() as keys_dir,
        ExitStack() as dashboard,
    ):
        result = _run(config, console, chain, ipfs_node, folder, Path(keys_dir), dashboard)
        result.phase_seconds["setup"] = round(time.perf_counter() - started - sum(result.phase_seconds.values()),
                                                    1)  # fmt: skip
        result.seconds = time.perf_counter() - started
        result.report_path = write_report(_report_data(config, result), folder)
        if config.keep_open:
            _wait_for_interrupt(console, result)
    return result


def _start_dashboard(config: DemoConfig, console: Console, chain: LocalAnvil, ipfs_node: LocalIpfsNode,
                     market: str, start_block: int, folder: Path, stack: ExitStack) -> str | None:  # fmt: skip
    """Index the demo's chain into the report folder's SQLite file and serve the dashboard on loopback."""
    if not config.dashboard:
        return None
    settings = ServiceSettings(rpc_url=chain.rpc_url, marketplace=market, db_url=f"sqlite:///{folder / 'index.db'}",
                               ipfs_api=ipfs_node.api_url, start_block=start_block, poll_interval=0.5)  # fmt: skip
    service = stack.enter_context(running_service(settings))
    console.print(f"dashboard at [bold]{service.url}[/bold] (live while the demo runs)")
    return str(service.url)


def _wait_for_interrupt(console: Console, result: DemoResult) -> None:
    where = f" at {result.dashboard_url}" if result.dashboard_url else ""
    console.print(f"chain, IPFS node and dashboard stay up{where}; press Ctrl-C to stop them")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")


def _run(config: DemoConfig, console: Console, chain: LocalAnvil, ipfs_node: LocalIpfsNode, folder: Path,
         keys_dir: Path, dashboard: ExitStack) -> DemoResult:  # fmt: skip
    w3 = connect(chain.rpc_url, expected_chain_id=31337)
    keys = dev_accounts(FIRST_DATA_OWNER_ACCOUNT + config.data_owners)
    sessions = [ChainSession(w3, key) for key in keys]
    owner_contract, deployed = MarketplaceContract.deploy(sessions[OWNER_ACCOUNT])
    dashboard_url = _start_dashboard(config, console, chain, ipfs_node, owner_contract.address,
                                     deployed.block_number, folder, dashboard)  # fmt: skip
    clients = [IpfsClient(ipfs_node.api_url) for _ in sessions]
    files = [TaskFiles(c) for c in clients]
    validation, test, shards, model_spec, schema = _split(config)

    key_file = keys_dir / "aggregator.x25519.json"
    public_hex = create_x25519_key(key_file, DEMO_PASSWORD)
    assert key_to_hex(public_key_from_private(load_x25519_key(key_file, DEMO_PASSWORD))) == public_hex
    n_honest = config.data_owners - len(config.attackers)
    kinds = ["honest"] * n_honest + list(config.attackers)
    labels = [f"#{i + 1}" for i in range(config.data_owners)]
    terms = TaskTerms(reward=int(config.reward_eth * ETH), stake=int(config.stake_eth * ETH), rounds=config.rounds,
                      round_duration=config.round_duration, aggregator=sessions[AGGREGATOR_ACCOUNT].address,
                      max_participants=config.data_owners, min_participants=config.data_owners)  # fmt: skip
    training = {"epochs": config.local_epochs, "lr": config.learning_rate, "momentum": config.momentum,
                "batch_size": 32}  # fmt: skip

    rules = config.rules

    def make_spec(validation_cid: str) -> TaskSpec:
        return TaskSpec(name=f"{config.dataset} classifier",
                        description=f"{model_spec.kind} on scikit-learn's {config.dataset}, protocol round",
                        model=model_spec, data_schema=schema, validation_cid=validation_cid,  # type: ignore[arg-type]
                        aggregator_public_key=public_hex, training=training, scale_bits=config.scale_bits,
                        bound=rules.bound, protocol=rules.to_dict())  # fmt: skip

    t0 = time.perf_counter()
    what = {"groth16": f"deploying the Groth16 rules verifier ({rules.rule_version}; the circuit's UNSAFE "
                       "single-party setup runs once per shape, then is cached)",
            "pedersen": "deploying the Pedersen verifier",
            "none": "publishing an unverified task"}[rules.proof]  # fmt: skip
    with console.status(what):
        published = publish_task(owner_contract, files[OWNER_ACCOUNT], make_spec, validation, terms, config.seed)
    if published.verifier is not None:
        kind = f"Groth16 rules {rules.rule_version} (UNSAFE dev setup)" if published.verifier.label else "Pedersen"
        result_verifier = f"{kind} verifier at {published.verifier.address}"
    else:
        result_verifier = "no verifier"
    task_id = published.task_id
    result = DemoResult(
        task_id, [], escrow=terms.reward, stakes=terms.stake * config.data_owners, dashboard_url=dashboard_url
    )
    result.gas_by_call["createTask"].append(published.create.gas_used)
    if published.verifier is not None:
        result.gas_by_call["deploy verifier"].append(published.verifier.gas)
    result.verifier = result_verifier
    data_owners = [DataOwner(owner_contract.with_session(sessions[i]), files[i], shard)
                   for i, shard in enumerate(shards, start=FIRST_DATA_OWNER_ACCOUNT)]  # fmt: skip
    for member in data_owners:
        result.gas_by_call["join"].append(member.join(task_id).gas_used)
    result.gas_by_call["startTask"].append(owner_contract.start_task(task_id).gas_used)
    console.print(f"task {task_id} published (spec {published.spec_cid}, proof {rules.proof}, {result_verifier}), "
                  f"{config.data_owners} data owners joined ({len(config.attackers)} attacking: "
                  f"{', '.join(config.attackers) or 'none'})")  # fmt: skip
    result.phase_seconds["publish_join"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    aggregator = _aggregator_process(chain, ipfs_node, owner_contract.address, key_file, task_id, folder)
    display = Display(labels, kinds, [d.address for d in data_owners])
    stop = threading.Event()
    errors: list[str] = []

    def owner_thread(index: int, member: DataOwner) -> None:
        kind = kinds[index]
        transform: Callable[[int], UpdateTransform | None] = (
            (lambda _r: None) if kind == "honest" else (lambda r: attack_transform(kind, config.seed * 1000 + r))
        )
        try:
            follow_task(member, task_id, lambda e: _note(display, labels[index], e), transform, 0.2, stop)
        except Exception as exc:  # a crashed data owner must not hang the demo; it is reported
            errors.append(f"{labels[index]}: {exc}")

    threads = [threading.Thread(target=owner_thread, args=(i, m), daemon=True) for i, m in enumerate(data_owners)]
    for thread in threads:
        thread.start()
    try:
        _follow_rounds(config, console, owner_contract, files[OWNER_ACCOUNT], task_id, test, model_spec, display,
                       result, aggregator)  # fmt: skip
    finally:
        stop.set()
        if aggregator.poll() is None:
            aggregator.terminate()
            aggregator.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        console.print("[yellow]data-owner errors:[/yellow] " + escape("; ".join(errors)))
    result.phase_seconds["rounds"] = round(time.perf_counter() - t0, 1)
    result.prove_seconds = _prove_seconds(folder / "aggregator-rounds.jsonl")
    result.refusals = _refusals(folder / "aggregator-rounds.jsonl")

    t0 = time.perf_counter()
    _settle_money(result, owner_contract, data_owners)
    with console.status("auditing every round (py_ecc pairings, commitments, rules, Shapley, payouts)"):
        report = audit_task(owner_contract, files[OWNER_ACCOUNT], task_id, validation)
    result.audit = report_checks(report)
    result.phase_seconds["withdraw_audit"] = round(time.perf_counter() - t0, 1)
    views = round_views(owner_contract, task_id)
    result.owners = _owner_lines(labels, kinds, data_owners, views, result)
    for client in clients:
        client.close()
    return result


def _prove_seconds(log: Path) -> list[float]:
    """The Groth16 proving time of each finalized round, from the aggregator's round log."""
    proves = [(entry.get("timings") or {}).get("prove") for entry in RoundLog(log).entries("finalized")]
    return [float(prove) for prove in proves if prove is not None]


def _refusals(log: Path) -> list[str]:
    """Every update the aggregator refused (envelope, commitment or range), with its reason, from its round log."""
    return [f"round {entry['round']}: {refusal['data_owner']}: {refusal['reason']}"
            for entry in RoundLog(log).entries("finalized") for refusal in entry.get("rejections") or []]  # fmt: skip


def _note(display: Display, label: str, event: FollowEvent) -> None:
    if event.kind in ("removed", "error", "retrying"):
        display.events.append(f"round {event.round}: {label} {event.kind} {event.detail}")


def _follow_rounds(config: DemoConfig, console: Console, contract: MarketplaceContract, files: TaskFiles,
                   task_id: int, test: Dataset, model_spec: ModelSpec, display: Display, result: DemoResult,
                   aggregator: subprocess.Popen[bytes]) -> None:  # fmt: skip
    """Poll the chain, evaluate each new global model on the held-out test split, refresh the display."""
    spec = files.spec(contract.get_task(task_id).spec_cid)
    model = build_model(model_spec, seed=0)
    deadline = time.monotonic() + config.timeout_s
    round_started = time.perf_counter()
    with Live(display.render(), console=console, refresh_per_second=4, transient=not config.live) as live:
        while True:
            info = contract.get_task(task_id)
            views = round_views(contract, task_id)
            for view in views[len(display.rows) :]:
                if not view.model_cid:
                    break
                load_arrays(model, files.model(view.model_cid, spec))
                metrics = evaluate(model, test)
                kept = sum(1 for w in view.weights if w)
                row = RoundRow(view.round, metrics["accuracy"], metrics["loss"], kept, view.submitted - kept, {},
                               time.perf_counter() - round_started)  # fmt: skip
                round_started = time.perf_counter()
                display.rows.append(row)
                result.rows.append(row)
                if not config.live:
                    console.print(f"round {row.round}: accuracy {row.accuracy:.3f}, kept {row.accepted}, "
                                  f"left out {row.left_out}, {row.seconds:.1f} s")  # fmt: skip
            display.views = views
            live.update(display.render())
            if info.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED) and info.unsettled_rounds == 0 and len(
                result.rows
            ) >= len([v for v in views if v.model_cid]):  # fmt: skip
                _record_gas(result, views)
                return
            if aggregator.poll() not in (None, 0):
                raise FedmarketError(f"the aggregator process exited with code {aggregator.returncode}",
                                     hint="see aggregator.log in the report folder")  # fmt: skip
            if time.monotonic() > deadline:
                raise FedmarketError(f"the demo did not finish within {config.timeout_s:.0f} s")
            time.sleep(0.3)


def _record_gas(result: DemoResult, views: list[RoundView]) -> None:
    """Each round's finalize and settle gas, read once every round is settled: a round's settlement can land
    after its model was first seen, and its gas then was not known yet."""
    by_round = {v.round: v for v in views}
    for row in result.rows:
        view = by_round[row.round]
        row.gas = {"finalizeRound": view.finalize_gas, "settleRound": view.settle_gas}
        result.gas_by_call["finalizeRound"].append(view.finalize_gas)
        if view.settle_gas:
            result.gas_by_call["settleRound"].append(view.settle_gas)


def _settle_money(result: DemoResult, owner: MarketplaceContract, data_owners: list[DataOwner]) -> None:
    for member in data_owners:
        try:
            withdrawal = member.withdraw(result.task_id)
        except FedmarketError:
            continue  # nothing owed (e.g. a removed owner whose stake was slashed away)
        result.gas_by_call["withdraw"].append(withdrawal.gas_used)
        result.payouts[member.address] = sum(e.amount for e in withdrawal.all(Withdrawn))
    refund = owner.withdraw(result.task_id)
    result.gas_by_call["refund"].append(refund.gas_used)
    result.refund = sum(e.amount for e in refund.all(Withdrawn))
    result.contract_balance_after = owner.session.balance(owner.address)


def _owner_lines(labels: list[str], kinds: list[str], data_owners: list[DataOwner], views: list[RoundView],
                 result: DemoResult) -> list[OwnerLine]:  # fmt: skip
    lines = []
    for i, member in enumerate(data_owners):
        line = OwnerLine(f"{labels[i]} {kinds[i]}", member.address, kinds[i], len(member.data))
        for view in views:
            if view.reputations:
                line.reputations.append(view.reputations[i])
            if view.contributions:
                line.contribution += max(view.contributions[i], 0)
            line.reward += view.credited.get(member.address, 0)
            if i in view.removed and line.removed_round is None:
                line.removed_round = view.round
            line.slashed += view.slashed.get(member.address, 0)
        line.payout = result.payouts.get(member.address, 0)
        lines.append(line)
    return lines


def _report_data(config: DemoConfig, result: DemoResult) -> ReportData:
    rounds = [{"round": r.round, "accuracy": r.accuracy, "loss": r.loss, "kept": r.accepted, "left_out": r.left_out,
               "gas": sum(r.gas.values()), "seconds": r.seconds} for r in result.rows]  # fmt: skip
    settings = {"data owners": config.data_owners, "attackers": ", ".join(config.attackers) or "none",
                "rounds": config.rounds, "data set": config.dataset, "Dirichlet alpha": config.alpha,
                "model": "logistic regression" if not config.hidden else f"MLP {config.hidden}",
                "proof": config.proof_text,
                "verifier": result.verifier, "RFFL": f"Γ={config.gamma}, α={config.rffl_alpha}, β={config.rffl_beta}",
                "filters": config.filter_text,
                "seed": config.seed, "dashboard (while the demo ran)": result.dashboard_url or "off"}  # fmt: skip
    paid = sum(result.payouts.values())
    summary = [
        f"- task {result.task_id}: final test accuracy **{result.final_accuracy:.3f}** after {len(result.rows)} rounds",
        f"- wall time **{result.seconds:.1f} s** ({', '.join(f'{k} {v} s' for k, v in result.phase_seconds.items())})",
        f"- money: escrow {result.escrow / ETH:.6f} + stakes {result.stakes / ETH:.6f} ETH = paid {paid / ETH:.6f} "
        f"+ refund {result.refund / ETH:.6f} + left {result.contract_balance_after / ETH:.6f} ETH: "
        f"{'conserved' if result.conserved else 'NOT conserved'}",
        f"- audit: {'all checks passed' if result.audit_passed else 'FAILED'} ({len(result.audit)} checks)",
        f"- updates refused by the aggregator: {'; '.join(result.refusals) or 'none'} (the rounds' 'left out' "
        "column also counts updates its rules dropped)",
    ]
    if result.prove_seconds:
        summary.append(f"- Groth16 proving ({config.rule_version}): {_seconds_text(result.prove_seconds)}; "
                       "the key comes from an UNSAFE single-party setup (dev only, never for real money)")  # fmt: skip
    audit = [(c.round, c.name, c.passed, c.detail) for c in result.audit]
    return ReportData("fedmarket demo report", settings, rounds, result.owners, audit, summary)


def _seconds_text(values: list[float]) -> str:
    return f"mean {sum(values) / len(values):.1f} s, max {max(values):.1f} s over {len(values)} rounds"


def render(result: DemoResult, console: Console) -> None:
    """Print the per-round table, the owners, the audit, the gas per call and the money check."""
    table = Table(title=f"task {result.task_id}: rounds (accuracy and loss on the held-out test split)")
    for column in ("round", "accuracy", "loss", "kept", "left out", "gas", "s"):
        table.add_column(column, justify="right")
    for row in result.rows:
        table.add_row(str(row.round), f"{row.accuracy:.3f}", f"{row.loss:.3f}", str(row.accepted), str(row.left_out),
                      f"{sum(row.gas.values()):,}", f"{row.seconds:.1f}")  # fmt: skip
    console.print(table)
    owners = Table(title="data owners")
    for column in ("owner", "samples", "final reputation", "removed", "slashed (ETH)", "reward (ETH)",
                   "withdrawn (ETH)"):  # fmt: skip
        owners.add_column(column)
    for o in result.owners:
        owners.add_row(o.label, str(o.samples), f"{o.reputations[-1]:.3f}" if o.reputations else "-",
                       str(o.removed_round or "-"), f"{o.slashed / ETH:.4f}" if o.slashed else "-",
                       f"{o.reward / ETH:.4f}", f"{o.payout / ETH:.4f}")  # fmt: skip
    console.print(owners)
    audit = Table(title="audit")
    for column in ("round", "check", "result"):
        audit.add_column(column)
    for c in result.audit:
        verdict = "[green]pass[/green]" if c.passed else f"[red]FAIL[/red] {escape(c.detail)}"
        audit.add_row(str(c.round), c.name, verdict)
    console.print(audit)
    gas_table = Table(title="gas per call")
    for column in ("call", "count", "mean gas", "max gas"):
        gas_table.add_column(column, justify="right")
    for call, values in result.gas_by_call.items():
        if values:
            gas_table.add_row(call, str(len(values)), f"{sum(values) // len(values):,}", f"{max(values):,}")
    console.print(gas_table)
    paid = sum(result.payouts.values())
    verdict = "[green]conserved[/green]" if result.conserved else "[red]NOT conserved[/red]"
    console.print(
        f"money: escrow {result.escrow / ETH:.6f} + stakes {result.stakes / ETH:.6f} ETH = "
        f"paid {paid / ETH:.6f} + refund {result.refund / ETH:.6f} + left in contract "
        f"{result.contract_balance_after / ETH:.6f} ETH: {verdict}"
    )
    if result.prove_seconds:
        console.print(f"Groth16 rules proof per round: {_seconds_text(result.prove_seconds)} "
                      "(UNSAFE single-party setup: dev only)")  # fmt: skip
    console.print(f"updates refused by the aggregator: {escape('; '.join(result.refusals)) or 'none'}")
    console.print(f"final test accuracy {result.final_accuracy:.3f}; demo took {result.seconds:.1f} s; "
                  f"report: {escape(str(result.report_path))}")  # fmt: skip
