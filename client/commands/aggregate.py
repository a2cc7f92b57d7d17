"""`fedmarket aggregate run`: the aggregator's daemon (aggregator.daemon.AggregatorDaemon) behind the CLI.

Idempotent by construction: a round is processed only while the chain shows it open, and the chain refuses a
second finalization, so a restart after a crash (SIGKILL included) redoes at most the unposted work from chain
and IPFS data. The daemon's per-task progress files (task-N.json) live in the state directory; this command
also appends one JSON line per event to a round log there, for people and scripts to follow.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import typer

from aggregator.daemon import AggregatorDaemon
from aggregator.round import RoundAggregator
from client.accounts import load_x25519_key
from client.commands.context import GIVE_UP_HELP, console, fail, password, reports_errors, shown, state_of
from client.settings import default_home
from marketplace.chain.events import RoundFinalized
from marketplace.chain.session import ChainUnavailableError
from marketplace.errors import FedmarketError, OutageTooLongError
from marketplace.ipfs.client import IpfsUnavailableError

aggregate_app = typer.Typer(help="Run the aggregator: decrypt, check, aggregate, prove, finalize.",
                            no_args_is_help=True)  # fmt: skip

ROUND_LOG = "rounds.jsonl"


class RoundLog:
    """What the daemon did, one JSON object per event (appended, never rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def entries(self, event: str) -> list[dict[str, Any]]:
        """The logged entries of one kind, e.g. "finalized", oldest first (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("event") == event:
                found.append(entry)
        return found

    def append(self, entry: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry, default=str) + "\n")


class CliDaemon(AggregatorDaemon):
    """The daemon, reporting each round's start and end (with gas and time from its progress file)."""

    def __init__(self, aggregator: RoundAggregator, state_dir: Path, task_ids: list[int] | None, poll: float,
                 report: Any, give_up_after: float | None = None) -> None:  # fmt: skip
        super().__init__(aggregator, state_dir, task_ids, poll, give_up_after=give_up_after)
        self.report = report

    def process_round(self, task_id: int, round_: int) -> None:
        started = time.perf_counter()
        finalized, skipped = len(self.log.finalized), len(self.log.skipped)
        self.report({"event": "aggregating", "task_id": task_id, "round": round_})
        super().process_round(task_id, round_)
        if len(self.log.skipped) > skipped:
            self.report({"event": "skipped", "task_id": task_id, "round": round_, "reason": "already on chain"})
        if len(self.log.finalized) > finalized:
            entry = self.progress(task_id).data["rounds"].get(str(round_), {})
            self.report({"event": "finalized", "task_id": task_id, "round": round_,
                         "model_cid": entry.get("model_cid", ""), "record_cid": entry.get("record_cid", ""),
                         "accepted": entry.get("accepted"), "rejected": entry.get("rejected"),
                         "rejections": entry.get("rejections", []),
                         "gas": entry.get("gas"), "seconds": round(time.perf_counter() - started, 2),
                         "timings": entry.get("timings")})  # fmt: skip

    def defer(self, task_id: int, round_: int, exc: IpfsUnavailableError) -> float:
        delay = super().defer(task_id, round_, exc)
        self.report({"event": "deferred", "task_id": task_id, "round": round_, "reason": str(exc),
                     "retry_in_seconds": round(delay, 1)})  # fmt: skip
        return delay

    def found_posted(self, task_id: int, event: RoundFinalized) -> bool:
        found = super().found_posted(task_id, event)
        if found:
            self.report({"event": "finalized", "task_id": task_id, "round": event.round, "model_cid": event.model_cid,
                         "found_on_chain": True})  # fmt: skip
        return found

    def leaves_alone(self, task_id: int) -> bool:
        known = task_id in self.log.unserved
        if not super().leaves_alone(task_id):
            return False
        if not known:
            self.report({"event": "left_alone", "task_id": task_id, "reason": self.log.unserved[task_id]})
        return True

    def chain_down(self, exc: ChainUnavailableError) -> float:
        delay = super().chain_down(exc)
        self.report({"event": "chain_unavailable", "reason": str(exc), "retry_in_seconds": round(delay, 1)})
        return delay

    def settle_due(self, task_id: int) -> None:
        settled = len(self.log.settled)
        try:
            super().settle_due(task_id)
        finally:  # the chain may stop answering after some settlements: report those
            for task, round_ in self.log.settled[settled:]:
                self.report({"event": "settled", "task_id": task, "round": round_})


def state_paths(state_dir: Path | None, state_file: Path | None, address: str) -> tuple[Path, Path]:
    """(state directory, round log): --state-dir wins; --state-file (the old flag) names the round log and its
    folder holds the progress files; by default both live in ~/.fedmarket/aggregator-ADDRESS/."""
    if state_dir is not None:
        return state_dir, state_dir / ROUND_LOG
    if state_file is not None:
        return state_file.parent, state_file
    folder = default_home() / f"aggregator-{address.lower()}"
    return folder, folder / ROUND_LOG


def serve(daemon: CliDaemon, only: int | None, stop: threading.Event, poll: float) -> None:
    """Pass over the tasks until `stop`, or until the one task served (`only`) is closed and settled."""
    while not stop.is_set():
        if daemon.step() and only is not None:
            return
        stop.wait(poll)


@aggregate_app.command("run")
@reports_errors
def run(
    ctx: typer.Context,
    x25519_key: Path = typer.Option(..., "--x25519-key", help="The aggregator's X25519 key file."),
    task: int | None = typer.Option(None, help="Serve only this task and exit once it is closed and settled."),
    state_dir: Path | None = typer.Option(
        None, help="Progress files and round log (default ~/.fedmarket/aggregator-ADDRESS/)."
    ),
    state_file: Path | None = typer.Option(
        None, help="Round log (JSON lines); its folder holds the progress files. Kept for scripts; prefer --state-dir."
    ),
    poll: float = typer.Option(1.0, min=0.1, help="Seconds between looks at the chain."),
    give_up_after: float | None = typer.Option(None, min=0, help=GIVE_UP_HELP),
) -> None:
    """Watch the chain and aggregate every round of the tasks this account aggregates; safe to kill and restart.

    Example: FEDMARKET_PASSWORD=... fedmarket --account 0xagg... aggregate run --x25519-key agg.x25519.json
    """
    state = state_of(ctx)
    contract = state.marketplace()
    private = load_x25519_key(x25519_key, password(confirm=False))
    aggregator = RoundAggregator(contract, state.files(), private)
    if task is not None and (reason := aggregator.unservable(task)) is not None:
        raise FedmarketError(reason)
    address = contract.session.address
    folder, log_path = state_paths(state_dir, state_file, address)
    log = RoundLog(log_path)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(entry: dict[str, Any]) -> None:
        log.append(entry)
        if state.as_json:
            typer.echo(json.dumps(entry, default=str))
        else:
            console.print(" ".join(f"{k}={shown(v)}" for k, v in entry.items()))

    daemon = CliDaemon(aggregator, folder, [task] if task is not None else None, poll, report, give_up_after)
    state.note(f"aggregator {address} watching {state.settings.rpc_url} (state in {shown(folder)}); Ctrl-C stops")
    try:
        serve(daemon, task, stop, poll)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except OutageTooLongError as exc:
        report({"event": "gave_up", "reason": str(exc)})
        raise fail(str(exc), state.as_json, code=2) from None
