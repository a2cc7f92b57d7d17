"""`fedmarket dispute`: challenge a finalized round within its dispute window, and (the task's arbiter) rule on it.

An audit that fails is only a verdict until someone acts on it: a challenge, posted with the task's bond before the
round settles, holds its payout until the arbiter rules. Upheld, the round is voided (its reward goes back to the
owner, its removals are undone) and the challenger gets its bond back with a share of the aggregator's bond;
rejected, the bond joins the round's pool for its data owners.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from client.commands.audit import run_audit
from client.commands.context import eth, reports_errors, shown, state_of
from marketplace.chain.erc20 import Erc20
from marketplace.chain.events import DisputeResolved, RoundChallenged
from marketplace.chain.marketplace_contract import MarketplaceContract, RoundStatus, TaskTerms
from marketplace.errors import FedmarketError
from marketplace.task_files import TaskFiles
from marketplace.text import utc_text

MAX_EVIDENCE_BYTES = 1 << 20

dispute_app = typer.Typer(help="Challenge a round's posted numbers within its dispute window; the arbiter rules.",
                          no_args_is_help=True)  # fmt: skip


def _disputable(contract: MarketplaceContract, task_id: int, round_: int) -> TaskTerms:
    """The task's terms, if a challenge could be posted on the round now; otherwise why not, before any bond is
    spent."""
    terms = contract.get_terms(task_id)
    if terms.dispute_window == 0:
        raise FedmarketError(f"task {task_id} takes no disputes (its dispute window is 0)")
    state = contract.get_round(task_id, round_)
    if state.status is not RoundStatus.FINALIZED:
        raise FedmarketError(f"round {round_} of task {task_id} is {state.status.name.lower()}: only a finalized "
                             "round can be disputed, before it settles")  # fmt: skip
    if int(state.challenger, 16) != 0:
        raise FedmarketError(f"{state.challenger} already disputes round {round_} of task {task_id}",
                             hint=f"the arbiter rules by {utc_text(state.challenge_deadline)}")  # fmt: skip
    now = contract.session.w3.eth.get_block("latest")["timestamp"]
    if now >= state.dispute_deadline:
        raise FedmarketError(f"round {round_}'s dispute window closed at {utc_text(state.dispute_deadline)}")
    return terms


def _audit_evidence(contract: MarketplaceContract, files: TaskFiles, task_id: int, round_: int) -> bytes:
    """This account's own audit of the round, as evidence; a round the audit passes is not disputed on it."""
    checks = [c for c in run_audit(contract, files, task_id, rounds={round_}) if c.round == round_]
    failed = [c for c in checks if not c.passed]
    if not failed:
        raise FedmarketError(f"the audit of round {round_} passes all {len(checks)} checks: nothing to dispute",
                             hint="give --evidence FILE to dispute it on other grounds")  # fmt: skip
    document = {"task_id": task_id, "round": round_, "failed": [c.name for c in failed],
                "checks": [asdict(c) for c in checks]}  # fmt: skip
    return json.dumps(document, indent=1).encode()


@dispute_app.command("open")
@reports_errors
def open_dispute(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    round_: int = typer.Argument(..., metavar="ROUND", help="The finalized round to dispute."),
    evidence: Path | None = typer.Option(
        None, help="Evidence to publish with the challenge (default: your own audit of the round, which must fail)."
    ),
) -> None:
    """Challenge a finalized round before it settles, posting the task's challenge bond.

    The evidence goes to IPFS and its CID on chain; the round's payout waits for the arbiter's ruling.

    Example: fedmarket --account 0xaud... dispute open 1 2
    """
    state = state_of(ctx)
    contract = state.marketplace()
    terms = _disputable(contract, task_id, round_)
    if evidence is not None:
        try:
            data = evidence.read_bytes()
        except OSError as exc:
            raise FedmarketError(f"cannot read evidence file {evidence}: {exc.strerror}") from None
        if len(data) > MAX_EVIDENCE_BYTES:
            raise FedmarketError(f"{evidence} holds {len(data):,} bytes; evidence is at most {MAX_EVIDENCE_BYTES:,}")
    else:
        with state.working(f"auditing round {round_} of task {task_id}"):
            data = _audit_evidence(contract, state.files(), task_id, round_)
    cid = state.files().put(data)
    if not terms.is_eth:
        Erc20(contract.session, terms.token).approve(contract.address, terms.challenge_bond)
    result = contract.challenge_round(task_id, round_, cid, terms.challenge_bond if terms.is_eth else 0)
    posted: RoundChallenged = result.first(RoundChallenged)
    state.emit(
        {"task_id": task_id, "round": round_, "evidence_cid": cid, "bond": posted.bond,
         "resolve_deadline": posted.resolve_deadline, "gas": result.gas_used},
        f"round {round_} of task {task_id} disputed with evidence {cid} (bond {eth(posted.bond)}); the arbiter "
        f"rules by {utc_text(posted.resolve_deadline)}",
    )  # fmt: skip


@dispute_app.command("resolve")
@reports_errors
def resolve(
    ctx: typer.Context,
    task_id: int = typer.Argument(..., help="Task id."),
    round_: int = typer.Argument(..., metavar="ROUND", help="The disputed round."),
    uphold: bool = typer.Option(..., "--uphold/--reject", help="Uphold (the posted numbers are wrong) or reject."),
) -> None:
    """The task's arbiter rules on an open dispute, before its deadline.

    Upheld: the round is voided and the challenger is owed its bond plus a share of the aggregator's bond.
    Rejected: the bond joins the round's pool, and the window stays open to other challengers.

    Example: fedmarket --account 0xarbiter... dispute resolve 1 2 --uphold
    """
    state = state_of(ctx)
    contract = state.marketplace()
    arbiter = contract.get_terms(task_id).arbiter
    if arbiter.lower() != contract.session.address.lower():
        raise FedmarketError(f"task {task_id}'s arbiter is {arbiter}, not {contract.session.address}")
    round_state = contract.get_round(task_id, round_)
    if round_state.status is not RoundStatus.FINALIZED or int(round_state.challenger, 16) == 0:
        raise FedmarketError(f"round {round_} of task {task_id} has no open dispute")
    result = contract.resolve_dispute(task_id, round_, uphold)
    ruling: DisputeResolved = result.first(DisputeResolved)
    verdict = (f"upheld: the round is voided and {ruling.challenger} is owed {eth(ruling.challenger_credit)}"
               if uphold else f"rejected: {eth(ruling.to_pool)} joins the round's pool")  # fmt: skip
    state.emit({"task_id": task_id, "round": round_, "upheld": uphold, "challenger": ruling.challenger,
                "challenger_credit": ruling.challenger_credit, "to_pool": ruling.to_pool, "gas": result.gas_used},
               f"dispute of round {round_} of task {task_id} {shown(verdict)}")  # fmt: skip
