"""`fedmarket audit TASK`: re-check every round from public data, print pass/fail, exit non-zero on a failure.

Uses the protocol's auditor (`client.audit.audit_task`: the aggregation Σ W_i C_i, the model's opening and file,
the rules recomputed, the Groth16 proof checked with py_ecc, Shapley contributions and payouts); `--basic` runs
only the checks below (model files against CIDs, payouts against contributions), which need no protocol data.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from client.commands.cid import matches_cid
from client.commands.context import console, fail, reports_errors, shown, state_of
from marketplace.chain.events import RewardCredited, RoundFinalized, RoundSettled
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.errors import FedmarketError, ServiceUnavailableError
from marketplace.task_files import TaskFiles
from marketplace.updates import unpack_model

if TYPE_CHECKING:
    from client.audit import AuditReport


@dataclass(frozen=True)
class Check:
    round: int
    name: str
    passed: bool
    detail: str = ""


def report_checks(report: AuditReport) -> list[Check]:
    """The auditor's report as one Check per verdict: the task-wide checks under round 0, then each round's."""
    checks = [Check(0, c.name, c.passed, c.detail) for c in report.task_checks]
    return checks + [Check(r.round, c.name, c.passed, c.detail) for r in report.rounds for c in r.checks]


def basic_checks(
    contract: MarketplaceContract, files: TaskFiles, task_id: int, model_file: Path | None = None
) -> list[Check]:
    """Model files against their CIDs and shapes, payouts against contributions, an optional local model file."""
    info = contract.get_task(task_id)
    spec = files.spec(info.spec_cid)
    checks: list[Check] = []
    finalized = [e for e in contract.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    for event in finalized:
        try:
            data = files.get(event.model_cid, spec.max_model_bytes)
            same, how = matches_cid(data, event.model_cid, files.ipfs)
            unpack_model(data, spec.shapes, spec.max_model_bytes)
            checks.append(Check(event.round, "model file matches its CID", same, how))
        except ServiceUnavailableError:
            raise
        except FedmarketError as exc:
            checks.append(Check(event.round, "model file matches its CID", False, str(exc)))
        positive = [max(c, 0) for c in event.contributions]
        checks.append(Check(event.round, "one weight per data owner", len(event.weights) == len(positive),
                            f"{len(event.weights)} weights, {len(positive)} contributions"))  # fmt: skip
    credits: dict[int, dict[str, int]] = {}
    for credit in contract.events("RewardCredited", taskId=task_id):
        assert isinstance(credit, RewardCredited)
        credits.setdefault(credit.round, {})[credit.data_owner] = credit.amount
    participants = contract.get_participants(task_id)
    by_round = {e.round: e for e in finalized}
    for settled in contract.events("RoundSettled", taskId=task_id):
        assert isinstance(settled, RoundSettled)
        final = by_round.get(settled.round)
        if final is None or settled.voided:
            continue
        removed = {i for i in range(len(participants)) if final.removals >> i & 1}
        shares = [max(c, 0) if i not in removed else 0 for i, c in enumerate(final.contributions)]
        total = sum(shares)
        expected = {p: settled.pool * s // total for p, s in zip(participants, shares, strict=True) if total and s}
        got = credits.get(settled.round, {})
        ok = all(got.get(p, 0) == amount for p, amount in expected.items()) and sum(got.values()) <= settled.pool
        checks.append(Check(settled.round, "payouts follow contributions", ok,
                            f"{len(got)} credits, pool {settled.pool}"))  # fmt: skip
    if model_file is not None:
        same, how = matches_cid(model_file.read_bytes(), info.model_cid, files.ipfs)
        checks.append(Check(info.current_round, f"{model_file.name} is the task's model", same, how))
    return checks


def full_checks(
    contract: MarketplaceContract,
    files: TaskFiles,
    task_id: int,
    model_file: Path | None = None,
    rounds: Collection[int] | None = None,
) -> list[Check]:
    """The protocol auditor's verdicts (client.audit.audit_task), one Check per round and check; a legacy (FedAvg)
    task has no protocol evidence, so it gets the basic checks instead."""
    from client.audit import audit_task

    spec = files.spec(contract.get_task(task_id).spec_cid)
    if spec.rules is None:
        return basic_checks(contract, files, task_id, model_file)
    checks = report_checks(audit_task(contract, files, task_id, rounds=rounds))
    if model_file is not None:
        info = contract.get_task(task_id)
        same, how = matches_cid(model_file.read_bytes(), info.model_cid, files.ipfs)
        checks.append(Check(info.current_round, f"{model_file.name} is the task's model", same, how))
    return checks


def run_audit(
    contract: MarketplaceContract,
    files: TaskFiles,
    task_id: int,
    model_file: Path | None = None,
    basic: bool = False,
    rounds: Collection[int] | None = None,
) -> list[Check]:
    """The full auditor's checks (unless `basic`: only the chain + IPFS checks); with `rounds`, the task-wide checks
    (round 0) and those rounds' only."""
    if rounds is not None:
        finalized = {e.round for e in contract.events("RoundFinalized", taskId=task_id)
                     if isinstance(e, RoundFinalized)}  # fmt: skip
        missing = sorted(set(rounds) - finalized)
        if missing:
            done = ", ".join(map(str, sorted(finalized))) or "none yet"
            raise FedmarketError(f"task {task_id} has no finalized round {', '.join(map(str, missing))} "
                                 f"(finalized: {done})")  # fmt: skip
    checks = basic_checks(contract, files, task_id, model_file) if basic else full_checks(
        contract, files, task_id, model_file, rounds
    )
    return [c for c in checks if rounds is None or c.round == 0 or c.round in rounds]


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


@reports_errors
def audit(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    model_file: Path | None = typer.Option(None, "--model", help="Also check a local model file is the task's."),
    basic: bool = typer.Option(False, help="Only the basic chain + IPFS checks (no proofs, rules or Shapley)."),
    round_: list[int] | None = typer.Option(
        None, "--round", help="Audit only this finalized round (repeat for more); the task-wide checks still run."
    ),
) -> None:
    """Verify a task's rounds with no trust in the aggregator.

    Checks each round's aggregation, model commitment and file, rules, proof, contributions and payouts.

    Exit status 1: a check failed. Exit status 2: the chain or the IPFS node stopped answering first.

    An incomplete audit judges nothing: what could not be read is neither passed nor failed.

    Example: fedmarket audit 1 --model model.safetensors; fedmarket audit 1 --round 3
    """
    state = state_of(ctx)
    try:
        with state.working(f"auditing task {task_id}"):
            checks = run_audit(state.marketplace(signed=False), state.files(), task_id, model_file, basic,
                               round_ or None)  # fmt: skip
    except ServiceUnavailableError as exc:
        raise fail(f"audit incomplete, nothing judged: {exc}", state.as_json, code=2) from None
    failed = [c for c in checks if not c.passed]
    if state.as_json:
        state.emit({"task_id": task_id, "passed": not failed, "checks": [asdict(c) for c in checks]}, "")
    else:
        table = Table("round", "check", "result", "detail", title=f"audit of task {task_id}")
        for c in checks:
            verdict = "[green]pass[/green]" if c.passed else "[red]FAIL[/red]"
            table.add_row(str(c.round), c.name, verdict, shown(c.detail))
        console.print(table)
        console.print(f"[red]{len(failed)} check(s) failed[/red]" if failed else f"[green]all {len(checks)} checks "
                      "passed[/green]")  # fmt: skip
    if failed or not checks:
        raise typer.Exit(1)
