"""Data-owner commands: join a task, train and submit on private data, stay online, see and take earnings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from client.commands.context import (
    GIVE_UP_HELP,
    State,
    console,
    eth,
    fail,
    paid_text,
    reports_errors,
    shown,
    state_of,
)
from client.data_owner import DataOwner
from client.training import TrainConfig, evaluate, model_delta, train_local
from client.training_cli import FollowEvent, follow_task
from client.update_file import load_update, save_update
from marketplace.chain.events import Withdrawn
from marketplace.chain.marketplace_contract import TaskStatus
from marketplace.data import load_data_file
from marketplace.errors import FedmarketError, OutageTooLongError
from marketplace.models import build_model, load_arrays, model_to_arrays

DATA_HELP = "Your private data: .csv (features, label last) or .npz (arrays X, y). It never leaves this machine."


def _data_owner(state: State, task_id: int, data: Path) -> DataOwner:
    contract = state.marketplace()
    files = state.files()
    info = contract.get_task(task_id)
    spec = files.spec(info.spec_cid)
    return DataOwner(contract, files, load_data_file(data, spec.data_schema))


def _bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                    TimeElapsedColumn(), console=console, transient=True)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Mount the data-owner commands at the top level (`fedmarket join`, `fedmarket run`, ...)."""
    for command in (join, train, submit, run, earnings, withdraw):
        app.command(command.__name__)(command)


@reports_errors
def join(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id (see `fedmarket task list`)."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
) -> None:
    """Join a task with its stake, after checking your data matches the task's data schema.

    Example: fedmarket --account 0xabc... join 1 --data mydata.csv
    """
    state = state_of(ctx)
    owner = _data_owner(state, task_id, data)
    result = owner.join(task_id)
    state.emit({"task_id": task_id, "account": owner.address, "samples": len(owner.data), "gas": result.gas_used},
               f"joined task {task_id} as {owner.address} with {len(owner.data)} samples; "
               f"next: `fedmarket run {task_id} --data {data}`")  # fmt: skip


@reports_errors
def train(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    out: Path | None = typer.Option(
        None, help="Also save the model update here (npz of float32 deltas); send it with `submit --update`."
    ),
) -> None:
    """Train locally from the task's current global model and report loss and accuracy on your data.

    Nothing is sent. Example: fedmarket train 1 --data mydata.csv --out update.npz
    """
    state = state_of(ctx)
    owner = _data_owner(state, task_id, data)
    info, spec = owner.task(task_id)
    global_arrays = owner.files.model(info.model_cid, spec)
    model = build_model(spec.model, seed=0)
    load_arrays(model, global_arrays)
    before = evaluate(model, owner.data)
    config = replace(TrainConfig.from_dict(spec.training), seed=0)
    with _bar() as bar:
        job = bar.add_task(f"training on {len(owner.data)} samples", total=config.epochs)
        loss = train_local(model, owner.data, config, lambda done, _total: bar.update(job, completed=done))
    after = evaluate(model, owner.data)
    delta = model_delta(model_to_arrays(model), global_arrays)
    if out is not None:
        save_update(out, task_id, info.current_round, info.model_cid, loss, delta)
    norm = float(np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in delta.values())))
    data_out = {"task_id": task_id, "round": info.current_round, "loss": loss, "accuracy_before": before["accuracy"],
                "accuracy_after": after["accuracy"], "update_norm": norm,
                "saved": str(out) if out else None}  # fmt: skip
    saved = f", saved to {out}" if out else ""
    state.emit(data_out, f"round {info.current_round}: loss {loss:.4f}, accuracy on your data "
                         f"{before['accuracy']:.3f} → {after['accuracy']:.3f}, update norm {norm:.3f}{saved}; "
                         f"send it with `fedmarket submit {task_id}"
                         f"{' --update ' + str(out) if out else ' --data ' + str(data)}`")  # fmt: skip


@reports_errors
def submit(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    update: Path | None = typer.Option(
        None, help="Send this update saved by `fedmarket train --out` instead of training now (same round only)."
    ),
) -> None:
    """Train for the open round (or take a saved update), then quantize, commit, seal, upload and submit.

    Example: fedmarket --account 0xabc... submit 1 --data mydata.csv [--update update.npz]
    """
    state = state_of(ctx)
    owner = _data_owner(state, task_id, data)
    info, spec = owner.task(task_id)
    if info.status is not TaskStatus.RUNNING:
        raise FedmarketError(f"task {task_id} is {info.status.name.lower()}, not taking updates",
                             hint=f"see `fedmarket task status {task_id}`")  # fmt: skip
    if update is not None:
        saved = load_update(update, task_id, info.current_round, info.model_cid, spec.shapes)
        report = owner.submit_delta(task_id, info.current_round, saved.delta, saved.loss)
    else:
        epochs = int(spec.training.get("epochs", TrainConfig.epochs))
        with _bar() as bar:
            job = bar.add_task(f"round {info.current_round}: training", total=epochs)
            report = owner.train_and_submit(task_id, info.current_round, lambda d, _t: bar.update(job, completed=d))
    state.emit({"task_id": task_id, "round": report.round, "update_cid": report.update_cid,
                "sealed_bytes": report.sealed_bytes, "loss": report.train_loss, "gas": report.submit.gas_used},
               f"round {report.round}: update {report.update_cid} ({report.sealed_bytes:,} bytes sealed) "
               f"recorded; loss {report.train_loss:.4f}")  # fmt: skip


@reports_errors
def run(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    join_first: bool = typer.Option(False, "--join", help="Join the task first if this account has not."),
    poll: float = typer.Option(1.0, min=0.1, help="Seconds between looks at the chain."),
    give_up_after: float | None = typer.Option(None, min=0, help=GIVE_UP_HELP),
) -> None:
    """Stay online and submit an update in every round until the task ends (Ctrl-C to stop; safe to restart).

    Example: fedmarket --account 0xabc... run 1 --data mydata.csv --join
    """
    state = state_of(ctx)
    owner = _data_owner(state, task_id, data)
    if join_first and not owner.contract.get_participant(task_id, owner.address).joined:
        owner.join(task_id)
        state.note(f"joined task {task_id}")

    def show(event: FollowEvent) -> None:
        if state.as_json:
            typer.echo(json.dumps({"event": event.kind, "round": event.round, "detail": event.detail}))
        else:
            console.print(f"round {event.round}: {event.kind} {shown(event.detail)}")

    try:
        sent = follow_task(owner, task_id, show, poll_seconds=poll, give_up_after=give_up_after)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except OutageTooLongError as exc:
        raise fail(str(exc), state.as_json, code=2) from None
    state.note(f"task {task_id} is over; {sent} update(s) sent; see `fedmarket earnings {task_id}`")


@reports_errors
def earnings(
    ctx: typer.Context,
    task_id: int | None = typer.Argument(None, help="Task id; all tasks this account joined if left out."),
) -> None:
    """What this account earned and may withdraw, per task.

    Example: fedmarket --account 0xabc... earnings --json
    """
    state = state_of(ctx)
    contract = state.marketplace()
    me = contract.session.address
    ids = [task_id] if task_id is not None else range(1, contract.task_count() + 1)
    rows = []
    for tid in ids:
        part = contract.get_participant(tid, me)
        payout, closed = contract.payout_of(tid, me)
        if task_id is None and not part.joined and payout.total == 0:
            continue
        # the contract zeroes a payout once it is taken; what was taken is in the Withdrawn events
        taken = sum(e.amount for e in contract.events("Withdrawn", taskId=tid, account=me) if isinstance(e, Withdrawn))
        # a dispute's credit (an upheld challenge's bond and share) can be taken at once; the rest once closed
        now = payout.total if closed else payout.challenge_credit
        rows.append({"task_id": tid, "earned": payout.earned, "stake": payout.stake, "total": payout.total,
                     "challenge_credit": payout.challenge_credit, "withdrawable_now": now,
                     "withdrawable": now > 0,
                     "withdrawn": part.withdrawn, "withdrawn_amount": taken})  # fmt: skip
    if state.as_json:
        state.emit(rows, "")
        return
    from rich.table import Table

    table = Table("task", "earned", "stake back", "total", "state", title=f"earnings of {me} (ETH)")
    for r in rows:
        phase = "task not closed" if not r["withdrawn"] else ""
        if r["withdrawable"]:
            partial = r["withdrawable_now"] < r["total"]
            phase = f"withdraw {eth(r['withdrawable_now'])} now" + ("; the rest when it closes" if partial else "")
        if r["withdrawn_amount"]:
            phase = f"withdrew {eth(r['withdrawn_amount'])}" + (f"; {phase}" if phase else "")
        table.add_row(str(r["task_id"]), eth(r["earned"]), eth(r["stake"]), eth(r["total"]), phase)
    console.print(table if rows else f"{me} has joined no task")


@reports_errors
def withdraw(ctx: typer.Context, task_id: int = typer.Argument(..., help="Task id.")) -> None:
    """Take out rewards and stake once the task is closed (pull payment).

    Example: fedmarket --account 0xabc... withdraw 1
    """
    state = state_of(ctx)
    result = state.marketplace().withdraw(task_id)
    paid = result.all(Withdrawn)
    amount = sum(e.amount for e in paid)
    state.emit({"task_id": task_id, "amount": amount, "gas": result.gas_used},
               f"withdrew {paid_text(amount, paid[0].token)}")  # fmt: skip
