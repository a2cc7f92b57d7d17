"""`fedmarket task ...`: publish and manage a task (owner), browse tasks (data owners)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.live import Live

from client.commands.cid import matches_cid
from client.commands.context import console, eth, paid_text, reports_errors, shown, state_of
from client.commands.views import as_dicts, round_views, rounds_table, task_summary, terms_table
from client.owner import publish_task
from client.spec_file import load_spec_file
from marketplace.chain.erc20 import Erc20
from marketplace.chain.events import Withdrawn
from marketplace.chain.marketplace_contract import TaskStatus
from marketplace.errors import FedmarketError
from marketplace.task_spec import LINKED_VERSIONS
from marketplace.updates import unpack_model

task_app = typer.Typer(help="Publish, follow and close training tasks; browse open ones.", no_args_is_help=True)
GAS_RESERVE = 10**16  # wei kept aside for the publishing transactions' gas


@task_app.command("publish")
@reports_errors
def publish(
    ctx: typer.Context,
    spec: Path = typer.Argument(..., help="Task spec file (TOML); see examples/digits-task.toml."),
    dry_run: bool = typer.Option(False, help="Run every check, upload and spend nothing."),
) -> None:
    """Publish a task: check the spec, upload validation set, initial model and spec to IPFS, escrow the reward.

    Example: fedmarket --dev-account 0 task publish examples/digits-task.toml
    """
    state = state_of(ctx)
    loaded = load_spec_file(spec)
    contract = state.marketplace()
    terms = loaded.terms
    needed = terms.reward if terms.on_chain().is_eth else 0
    balance = contract.session.balance()
    if balance < needed + GAS_RESERVE:
        raise FedmarketError(
            f"{contract.session.address} holds {eth(balance)} ETH; the reward needs {eth(needed)} ETH plus gas",
            hint="fund the account or lower [task] reward",
        )
    if not terms.on_chain().is_eth:
        held = Erc20(contract.session, terms.token).balance_of(contract.session.address)
        if held < terms.reward:
            raise FedmarketError(f"the account holds {held} of token {terms.token}; the reward needs {terms.reward}",
                                 hint="acquire the tokens or lower [task] reward")  # fmt: skip
    if dry_run:
        passed = f"[green]{shown(spec)}: every check passed[/green]; nothing spent"
        state.emit({"checked": str(spec), "ok": True}, passed)
        return
    proof = loaded.protocol.proof if loaded.protocol is not None else "legacy (FedAvg, no protocol)"
    rule_version = loaded.protocol.rule_version if loaded.protocol is not None else ""
    state.note(f"uploading the validation set, the initial model and the spec; escrowing the reward (proof: {proof}"
               f"{' ' + rule_version if rule_version else ''})")  # fmt: skip
    if loaded.protocol is not None and loaded.protocol.proof == "groth16":
        state.note("deploying the Groth16 rules verifier: the UNSAFE single-party setup runs once per circuit shape "
                   "(minutes for a few hundred parameters), then is cached")  # fmt: skip
    if rule_version in LINKED_VERSIONS and terms.dispute_window == 0:
        state.note(f"[yellow]warning[/yellow]: {rule_version}'s commitment link is checked by auditors, not by the "
                   "chain; with dispute_window = 0 a failed audit cannot stop a payout (see \\[task])")  # fmt: skip
    with state.working("publishing"):
        published = publish_task(contract, state.files(), loaded.task_spec, loaded.validation, terms,
                                 loaded.model_seed)  # fmt: skip
    verifier = published.verifier
    data = {
        "task_id": published.task_id, "spec_cid": published.spec_cid, "model_cid": published.initial_model_cid,
        "gas": published.create.gas_used, "tx": published.create.tx.tx_hash, "proof": proof,
        "rule_version": rule_version,
        "verifier": verifier.address if verifier else None, "verifier_gas": verifier.gas if verifier else 0,
    }  # fmt: skip
    state.emit(data, f"task [bold]{published.task_id}[/bold] published (spec {published.spec_cid}); "
                     f"data owners join with `fedmarket join {published.task_id}`; "
                     f"start it with `fedmarket task start {published.task_id}`")  # fmt: skip


@task_app.command("start")
@reports_errors
def start(ctx: typer.Context, task_id: int = typer.Argument(..., help="Task id.")) -> None:
    """Close joining and open round 1 (owner only).

    Example: fedmarket --dev-account 0 task start 1
    """
    state = state_of(ctx)
    result = state.marketplace().start_task(task_id)
    state.emit({"task_id": task_id, "gas": result.gas_used}, f"task {task_id} started: round 1 is open")


@task_app.command("status")
@reports_errors
def status(ctx: typer.Context, task_id: int = typer.Argument(..., help="Task id.")) -> None:
    """A task's phase, terms and every round so far.

    Example: fedmarket task status 1 --json
    """
    state = state_of(ctx)
    contract = state.marketplace(signed=False)
    summary = task_summary(contract.get_task(task_id))
    views = round_views(contract, task_id)
    if state.as_json:
        state.emit(summary | {"rounds_detail": as_dicts(views)}, "")
        return
    console.print(terms_table(summary))
    console.print(rounds_table(views))


@task_app.command("watch")
@reports_errors
def watch(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    interval: float = typer.Option(2.0, min=0.2, help="Seconds between refreshes."),
) -> None:
    """A live round table that refreshes until the task ends (Ctrl-C to stop watching).

    Example: fedmarket task watch 1
    """
    state = state_of(ctx)
    contract = state.marketplace(signed=False)

    def snapshot() -> tuple[TaskStatus, object]:
        info = contract.get_task(task_id)
        title = f"task {task_id}: {info.status.name.lower()}, round {info.current_round}/{info.terms.rounds}"
        views = round_views(contract, task_id)
        return info.status, (rounds_table(views, title=title), title, as_dicts(views))

    if state.as_json:
        state.emit(as_dicts(round_views(contract, task_id)), "")
        return
    status_now, (table, *seen) = snapshot()
    if not console.is_terminal:  # a pipe or a file: a new table whenever something changed, not a redrawn one
        console.print(table)
        try:
            while status_now in (TaskStatus.OPEN, TaskStatus.RUNNING):
                time.sleep(interval)
                status_now, (table, *now) = snapshot()
                if now != seen:
                    console.print(table)
                    seen = now
        except KeyboardInterrupt:
            pass
        return
    with Live(table, console=console, refresh_per_second=4) as live:
        try:
            while status_now in (TaskStatus.OPEN, TaskStatus.RUNNING):
                time.sleep(interval)
                status_now, (table, *_) = snapshot()
                live.update(table)
        except KeyboardInterrupt:
            pass


@task_app.command("model")
@reports_errors
def model(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    out: Path = typer.Option(..., "--out", help="Where to write the model (safetensors)."),
) -> None:
    """Download the task's current (after the last round: final) model and verify it against the chain.

    The file's CID is recomputed locally and compared with the CID the contract recorded.

    The tensors are checked against the spec's shapes.

    Example: fedmarket task model 1 --out model.safetensors
    """
    state = state_of(ctx)
    contract = state.marketplace(signed=False)
    info = contract.get_task(task_id)
    files = state.files()
    spec = files.spec(info.spec_cid)
    data = files.get(info.model_cid, spec.max_model_bytes)
    same, how = matches_cid(data, info.model_cid, files.ipfs)
    if not same:
        raise FedmarketError(f"the file served for {info.model_cid} does not hash to that CID",
                             hint="the IPFS node is faulty or hostile; fetch from another with --ipfs-api")  # fmt: skip
    unpack_model(data, spec.shapes, spec.max_model_bytes)
    out.write_bytes(data)
    final = info.status is TaskStatus.FINISHED
    state.emit(
        {"task_id": task_id, "model_cid": info.model_cid, "path": str(out), "bytes": len(data), "final": final,
         "verified": how},
        f"{'final' if final else 'current'} model {info.model_cid} → {shown(out)} ({len(data):,} bytes; CID {how})",
    )  # fmt: skip


@task_app.command("cancel")
@reports_errors
def cancel(ctx: typer.Context, task_id: int = typer.Argument(..., help="Task id.")) -> None:
    """Cancel a task: the owner before it starts, anyone once the aggregator missed a deadline.

    Example: fedmarket --dev-account 0 task cancel 1
    """
    state = state_of(ctx)
    result = state.marketplace().cancel_task(task_id)
    state.emit(
        {"task_id": task_id, "gas": result.gas_used},
        f"task {task_id} cancelled; each role takes what it is owed with `fedmarket withdraw {task_id}`",
    )


@task_app.command("refund")
@reports_errors
def refund(ctx: typer.Context, task_id: int = typer.Argument(..., help="Task id.")) -> None:
    """Take back the escrow the task did not pay out (owner, once the task is closed).

    Example: fedmarket --dev-account 0 task refund 1
    """
    state = state_of(ctx)
    result = state.marketplace().withdraw(task_id)
    paid = result.all(Withdrawn)
    amount = sum(e.amount for e in paid)
    state.emit({"task_id": task_id, "amount": amount, "gas": result.gas_used},
               f"refunded {paid_text(amount, paid[0].token)}")  # fmt: skip


@task_app.command("list")
@reports_errors
def list_tasks(
    ctx: typer.Context,
    all_tasks: bool = typer.Option(False, "--all", help="Also tasks that are running or over."),
) -> None:
    """Tasks open for joining, with their terms.

    Example: fedmarket task list --json
    """
    state = state_of(ctx)
    contract = state.marketplace(signed=False)
    summaries = []
    for task_id in range(1, contract.task_count() + 1):
        info = contract.get_task(task_id)
        if all_tasks or info.status is TaskStatus.OPEN:
            summaries.append(task_summary(info))
    if state.as_json:
        state.emit(summaries, "")
        return
    from rich.table import Table

    table = Table("id", "status", "rounds", "joined", "reward", "stake", "aggregator", title="tasks")
    for s in summaries:
        table.add_row(str(s["task_id"]), s["status"], str(s["rounds"]), f"{s['data_owners']}/{s['max_data_owners']}",
                      eth(s["reward"]), eth(s["stake"]), s["aggregator"])  # fmt: skip
    console.print(table if summaries else "no open tasks (use --all to see every task)")


@task_app.command("show")
@reports_errors
def show(ctx: typer.Context, task_id: int = typer.Argument(..., help="Task id.")) -> None:
    """A task's terms and its spec from IPFS: model, data schema, training settings.

    Example: fedmarket task show 1
    """
    state = state_of(ctx)
    info = state.marketplace(signed=False).get_task(task_id)
    spec = state.files().spec(info.spec_cid)
    summary = task_summary(info) | {
        "name": spec.name, "description": spec.description, "model": spec.model.to_dict(),
        "data_schema": {"num_features": spec.data_schema.num_features, "num_classes": spec.data_schema.num_classes},
        "training": spec.training, "aggregation": spec.aggregation, "protocol": spec.protocol or None,
    }  # fmt: skip
    state.emit(summary, terms_table(summary))
