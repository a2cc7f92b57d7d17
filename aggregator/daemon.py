"""The aggregator daemon: poll the chain, run each round when it is ready, settle after the dispute window.

Idempotent by construction: before posting it asks the chain whether the round is still open, so a
restarted daemon (or a second one) never finalizes a round twice; an unfinished round (fetched, planned,
or mid-proof when the process died) is simply redone from chain + IPFS data, which gives the same report. An
outage of the chain or of the IPFS node is waited out the same way: the pass (or the round) is tried again later.

Run as a process:  python -m aggregator.daemon --state-dir DIR [--task ID] [--until-done]
with FEDMARKET_RPC_URL, FEDMARKET_IPFS_API, FEDMARKET_MARKETPLACE, FEDMARKET_AGGREGATOR_KEY (Ethereum key,
hex) and FEDMARKET_X25519_KEY (the key updates are sealed to, hex) in the environment.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.round import RoundAggregator
from aggregator.state import TaskProgress
from marketplace.chain.events import RoundFinalized
from marketplace.chain.marketplace_contract import RoundStatus, TaskStatus
from marketplace.chain.session import ChainUnavailableError
from marketplace.errors import ContractRevert
from marketplace.ipfs.client import IpfsUnavailableError
from marketplace.net import Backoff

STALL_ENV = "FEDMARKET_DAEMON_STALL"  # tests: sleep at this stage so a SIGKILL lands mid-round


@dataclass
class DaemonLog:
    finalized: list[tuple[int, int]] = field(default_factory=list)
    settled: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[tuple[int, int]] = field(default_factory=list)
    deferred: list[tuple[int, int, str]] = field(default_factory=list)  # (task, round, why): retried later
    chain_outages: list[str] = field(default_factory=list)  # why a pass stopped; the next one starts over
    unserved: dict[int, str] = field(default_factory=dict)  # task -> why it is left alone (RoundAggregator.unservable)


class AggregatorDaemon:
    """Serves the tasks that name this aggregator (or `task_ids`), one polling pass at a time."""

    def __init__(
        self,
        aggregator: RoundAggregator,
        state_dir: Path | str,
        task_ids: list[int] | None = None,
        poll_seconds: float = 1.0,
        on_event: Callable[[str], None] | None = None,
        give_up_after: float | None = None,
    ) -> None:
        self.aggregator = aggregator
        self.state_dir = Path(state_dir)
        self.task_ids = task_ids
        self.poll_seconds = poll_seconds
        self.on_event = on_event or (lambda message: None)
        self.log = DaemonLog()
        self._stall = os.environ.get(STALL_ENV, "")
        self._progress: dict[int, TaskProgress] = {}
        self._retry: dict[int, Backoff] = {}  # per task, while its IPFS fetches fail
        self.give_up_after = give_up_after  # seconds of one outage before the daemon stops (None: never)
        self._chain_retry = Backoff(poll_seconds, give_up_after)  # while the chain fails

    @property
    def contract(self):  # type: ignore[no-untyped-def]
        return self.aggregator.contract

    def tasks(self) -> list[int]:
        if self.task_ids is not None:
            return list(self.task_ids)
        me = self.contract.session.address.lower()
        count = self.contract.task_count()
        return [t for t in range(1, count + 1) if self.contract.get_terms(t).aggregator.lower() == me]

    def progress(self, task_id: int) -> TaskProgress:
        if task_id not in self._progress:
            self._progress[task_id] = TaskProgress(self.state_dir, task_id)
            if self._progress[task_id].data["rounds"]:
                self._progress[task_id].note_restart()
        return self._progress[task_id]

    def step(self) -> bool:
        """One pass over every task; True when all of them are over and settled. A chain that stops answering
        ends the pass (`chain_down`): every stage redoes from chain and IPFS data, so the next pass resumes."""
        if self._chain_retry.waiting():
            return False
        try:
            done = self._pass()
        except ChainUnavailableError as exc:
            self.chain_down(exc)
            return False
        self._chain_retry.clear()
        return done

    def _pass(self) -> bool:
        done = True
        for task_id in self.tasks():
            if self.leaves_alone(task_id):
                continue
            info = self.contract.get_task(task_id)
            if info.status is TaskStatus.RUNNING and not self._waiting(task_id):
                try:
                    if self.aggregator.ready(task_id, info.current_round):
                        self.process_round(task_id, info.current_round)
                    self._retry.pop(task_id, None)
                except IpfsUnavailableError as exc:
                    self.defer(task_id, info.current_round, exc)
            self.settle_due(task_id)
            info = self.contract.get_task(task_id)
            done = done and info.status in (TaskStatus.FINISHED, TaskStatus.CANCELLED) and info.unsettled_rounds == 0
        return done

    def leaves_alone(self, task_id: int) -> bool:
        """A task this aggregator may not serve (wrong account or key) is never touched; said once."""
        if task_id not in self.log.unserved:
            reason = self.aggregator.unservable(task_id)
            if reason is None:
                return False
            self.log.unserved[task_id] = reason
            self.on_event(f"leaving task {task_id} alone: {reason}")
        return True

    def chain_down(self, exc: ChainUnavailableError) -> float:
        """The chain failed us mid-pass: wait (returned) from the poll interval, doubling, before the next pass.
        A finalization it may have received is found on chain then (the round is no longer open). Past
        `give_up_after` seconds of failures, OutageTooLongError ends the daemon."""
        delay = self._chain_retry.failed(exc)
        reason = str(exc)
        self.log.chain_outages.append(reason)
        self.on_event(f"chain unavailable, retrying in {delay:.1f} s: {reason}")
        return delay

    def _waiting(self, task_id: int) -> bool:
        return task_id in self._retry and self._retry[task_id].waiting()

    def defer(self, task_id: int, round_: int, exc: IpfsUnavailableError) -> float:
        """Our IPFS node failed mid-round: nothing was posted and no submission was judged, so the round is
        retried after a delay (returned) that starts at the poll interval and doubles (`Backoff`)."""
        delay = self._retry.setdefault(task_id, Backoff(self.poll_seconds, self.give_up_after)).failed(exc)
        reason = str(exc)
        self.log.deferred.append((task_id, round_, reason))
        self.on_event(f"task {task_id} round {round_}: IPFS unavailable, retrying in {delay:.1f} s: {reason}")
        return delay

    def run(self, until_done: bool = True, max_seconds: float | None = None) -> DaemonLog:
        started = time.monotonic()
        while True:
            if self.step() and until_done:
                return self.log
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return self.log
            time.sleep(self.poll_seconds)

    def process_round(self, task_id: int, round_: int) -> None:
        """collect → plan → prove → post, logging each stage; a round the chain already has is skipped."""
        from aggregator.protocol import RoundAlreadyPosted, collect, plan, post, prove

        progress = self.progress(task_id)
        if self.contract.get_round(task_id, round_).status is not RoundStatus.OPEN:
            self.log.skipped.append((task_id, round_))
            return
        _, spec = self.aggregator.task(task_id)
        if spec.rules is None:  # legacy FedAvg task: one call, still guarded by the status check above
            self.aggregator.aggregate_round(task_id, round_)
            progress.mark(round_, "posted")
            self.log.finalized.append((task_id, round_))
            return
        collected = collect(self.aggregator, task_id, round_)
        rejections = [{"data_owner": r.data_owner, "update_cid": r.update_cid, "reason": r.reason}
                      for r in collected.rejected]  # fmt: skip
        progress.mark(round_, "fetched", accepted=len(collected.accepted), rejected=len(rejections),
                      rejections=rejections)  # fmt: skip
        self._maybe_stall("fetched")
        planned = plan(self.aggregator, task_id, round_, collected)
        progress.mark(round_, "planned", model_cid=planned.report.model_cid, record_cid=planned.record_cid)
        progress.mark(round_, "proving")
        self._maybe_stall("proving")
        planned = prove(self.aggregator, task_id, planned)
        try:
            result = post(self.aggregator, task_id, round_, planned)
        except RoundAlreadyPosted:  # its RoundFinalized event is recorded by settle_due (found_posted)
            self.log.skipped.append((task_id, round_))
            return
        timings = {k: round(v, 3) for k, v in result.timings.items()}
        progress.mark(round_, "posted", finalize_tx=result.finalize.tx.tx_hash, gas=result.finalize.gas_used,
                      timings=timings)  # fmt: skip
        self.log.finalized.append((task_id, round_))
        if result.settle is not None:
            progress.mark(round_, "settled")
            self.log.settled.append((task_id, round_))
        self.on_event(f"task {task_id} round {round_} finalized ({result.model_cid})")

    def settle_due(self, task_id: int) -> None:
        """settleRound for every finalized round whose dispute window is over (anyone may; the daemon does)."""
        finalized = [e for e in self.contract.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
        for event in finalized:
            self.found_posted(task_id, event)
        now = max(int(time.time()), int(self.contract.session.w3.eth.get_block("latest")["timestamp"]))
        for event in finalized:
            if now < event.dispute_deadline:
                continue
            if self.contract.get_round(task_id, event.round).status is not RoundStatus.FINALIZED:
                continue
            try:
                self.contract.settle_round(task_id, event.round, event.contributions)
            except ContractRevert:  # window still open by the chain's clock, or a dispute: next pass
                continue
            self.progress(task_id).mark(event.round, "settled")
            self.log.settled.append((task_id, event.round))

    def found_posted(self, task_id: int, event: RoundFinalized) -> bool:
        """Record a round this daemon started whose finalization the chain took without telling it (the chain
        or the process went away after the transaction was sent); True when it was such a round."""
        progress = self.progress(task_id)
        if progress.stage(event.round) not in ("fetched", "planned", "proving"):
            return False
        progress.mark(event.round, "posted", model_cid=event.model_cid, found_on_chain=True)
        self.log.finalized.append((task_id, event.round))
        return True

    def _maybe_stall(self, stage: str) -> None:
        if self._stall == stage:
            self.progress_marker(stage)
            time.sleep(3600)

    def progress_marker(self, stage: str) -> None:
        (self.state_dir / f"stalled-{stage}").write_text(str(os.getpid()))


def main(argv: list[str] | None = None) -> int:
    from eth_account import Account

    from marketplace.chain.marketplace_contract import MarketplaceContract
    from marketplace.chain.session import ChainSession, connect
    from marketplace.ipfs import IpfsClient
    from marketplace.task_files import TaskFiles

    parser = argparse.ArgumentParser(description="fedmarket aggregator daemon")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--task", type=int, action="append")
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--until-done", action="store_true")
    args = parser.parse_args(argv)
    env = os.environ
    session = ChainSession(connect(env["FEDMARKET_RPC_URL"]), Account.from_key(env["FEDMARKET_AGGREGATOR_KEY"]))
    contract = MarketplaceContract(session, env["FEDMARKET_MARKETPLACE"])
    with IpfsClient(env["FEDMARKET_IPFS_API"]) as ipfs:
        aggregator = RoundAggregator(contract, TaskFiles(ipfs), bytes.fromhex(env["FEDMARKET_X25519_KEY"]))
        daemon = AggregatorDaemon(aggregator, args.state_dir, args.task, args.poll, lambda m: print(m, flush=True))
        daemon.run(until_done=args.until_done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
