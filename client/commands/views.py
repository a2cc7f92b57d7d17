"""Read-only pictures of tasks and rounds, built from chain state and events (shared by status, watch, demo)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.markup import escape
from rich.table import Table

from marketplace.chain.events import RewardCredited, RoundFinalized, RoundSettled, Slashed
from marketplace.chain.marketplace_contract import REPUTATION_ONE, MarketplaceContract, TaskInfo, TaskStatus
from marketplace.text import duration_text, protocol_text, utc_text

WEI = 10**18


@dataclass
class RoundView:
    """One round as anyone can see it on chain."""

    round: int
    status: str
    submitted: int
    model_cid: str = ""
    reputations: list[float] = field(default_factory=list)  # per data owner, join order, 0..1
    contributions: list[int] = field(default_factory=list)
    weights: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)  # join indices removed in this round
    credited: dict[str, int] = field(default_factory=dict)  # data owner -> wei
    slashed: dict[str, int] = field(default_factory=dict)
    finalize_gas: int = 0
    settle_gas: int = 0


def task_summary(info: TaskInfo) -> dict[str, Any]:
    """The terms and progress of a task, as plain values."""
    terms = info.terms
    return {
        "task_id": info.task_id,
        "owner": info.owner,
        "status": info.status.name.lower(),
        "round": info.current_round,
        "rounds": terms.rounds,
        "data_owners": info.data_owners,
        "max_data_owners": terms.max_data_owners,
        "removed": info.removed_count,
        "token": "ETH" if terms.is_eth else terms.token,
        "reward": terms.reward,
        "stake": terms.stake,
        "aggregator": terms.aggregator,
        "verified": not terms.unverified,
        "join_deadline": info.join_deadline,
        "submission_period": terms.submission_period,
        "aggregation_period": terms.aggregation_period,
        "dispute_window": terms.dispute_window,
        "spec_cid": info.spec_cid,
        "model_cid": info.model_cid,
    }


def terms_table(summary: dict[str, Any]) -> Table:
    table = Table("term", "value", title=f"task {summary['task_id']}", show_header=False)
    for key, value in summary.items():
        if key in ("reward", "stake"):
            value = f"{value / WEI:.6f} {summary['token'] if summary['token'] == 'ETH' else 'tokens'}"
        elif key == "join_deadline":
            value = utc_text(value)
        elif key in ("submission_period", "aggregation_period", "dispute_window"):
            value = duration_text(value)
        elif key == "protocol":  # `task show`: the spec's rules in one line (--json keeps the table)
            value = protocol_text(value)
        table.add_row(key.replace("_", " "), escape(str(value)))
    return table


def round_views(contract: MarketplaceContract, task_id: int) -> list[RoundView]:
    """Every round opened so far, with what was posted and paid in it."""
    info = contract.get_task(task_id)
    w3 = contract.session.w3
    last = info.current_round if info.status is TaskStatus.RUNNING else info.terms.rounds
    views: dict[int, RoundView] = {}
    for round_ in range(1, max(last, 0) + 1):
        state = contract.get_round(task_id, round_)
        if state.status.name == "NONE":
            continue
        views[round_] = RoundView(round_, state.status.name.lower(), state.submitted)
    for event in contract.events("RoundFinalized", taskId=task_id):
        assert isinstance(event, RoundFinalized)
        view = views.get(event.round)
        if view is None:
            continue
        view.model_cid = event.model_cid
        view.reputations = [r / REPUTATION_ONE for r in event.reputations]
        view.contributions = list(event.contributions)
        view.weights = list(event.weights)
        view.removed = [i for i in range(len(event.weights)) if event.removals >> i & 1]
        view.finalize_gas = int(w3.eth.get_transaction_receipt(event.tx_hash)["gasUsed"])
    for event in contract.events("RewardCredited", taskId=task_id):
        assert isinstance(event, RewardCredited)
        if event.round in views:
            views[event.round].credited[event.data_owner] = event.amount
    for event in contract.events("Slashed", taskId=task_id):
        assert isinstance(event, Slashed)
        if event.round in views:
            views[event.round].slashed[event.data_owner] = event.amount
    for event in contract.events("RoundSettled", taskId=task_id):
        assert isinstance(event, RoundSettled)
        if event.round in views:
            views[event.round].settle_gas = int(w3.eth.get_transaction_receipt(event.tx_hash)["gasUsed"])
    return [views[r] for r in sorted(views)]


def rounds_table(views: list[RoundView], title: str = "rounds") -> Table:
    table = Table(title=title)
    for column in ("round", "status", "submitted", "removed", "mean reputation", "credited (ETH)", "gas"):
        table.add_column(column, justify="right")
    for view in views:
        mean_rep = sum(view.reputations) / len(view.reputations) if view.reputations else 0.0
        table.add_row(
            str(view.round), view.status, str(view.submitted), ",".join(map(str, view.removed)) or "-",
            f"{mean_rep:.3f}" if view.reputations else "-", f"{sum(view.credited.values()) / WEI:.6f}",
            f"{view.finalize_gas + view.settle_gas:,}",
        )  # fmt: skip
    return table


def as_dicts(views: list[RoundView]) -> list[dict[str, Any]]:
    return [asdict(v) for v in views]
