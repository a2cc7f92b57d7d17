"""Protocol tasks driven through the `fedmarket` commands on real Anvil + IPFS: owner, three data owners, the
aggregator daemon (a separate process, once SIGKILLed mid-round and restarted) and the auditor, which must fail
on a tampered model file, a wrong weight and a forged proof."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from protocol_support.market import build_market
from protocol_support.waiting import wait_for
from typer.testing import CliRunner

import client.audit
from client.audit import RoundEvidence
from client.cli import app
from marketplace.chain.anvil import LocalAnvil
from marketplace.chain.marketplace_contract import MarketplaceContract, RoundStatus, TaskStatus
from marketplace.ipfs import IpfsClient, LocalIpfsNode
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration
RUNNER = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PASSWORD = "test-only"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The example spec (a Pedersen protocol task) and freshly made example data in a temporary folder."""
    os.environ["FEDMARKET_PASSWORD"] = PASSWORD
    sys.path.insert(0, str(EXAMPLES))
    try:
        import make_digits_data

        make_digits_data.main(tmp_path / "data")
    finally:
        sys.path.remove(str(EXAMPLES))
    spec = (EXAMPLES / "digits-task.toml").read_text().replace("rounds = 3", "rounds = 2")
    assert 'proof = "pedersen"' in spec
    (tmp_path / "task.toml").write_text(spec.replace('"1h"', '"10m"'))
    return tmp_path


def base_args(anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract) -> list[str]:
    return ["--rpc-url", anvil.rpc_url, "--ipfs-api", ipfs_node.api_url, "--marketplace", marketplace.address]


def cli(base: list[str], *args: str, dev: int | None = None, code: int = 0) -> dict:
    """Run one command in-process with --json and return its parsed output."""
    who = ["--dev-account", str(dev)] if dev is not None else []
    result = RUNNER.invoke(app, [*base, *who, "--json", *args], env={"FEDMARKET_PASSWORD": PASSWORD})
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith(("{", "["))]
    return json.loads(lines[-1]) if lines else {}


def refused(base: list[str], *args: str, dev: int | None = None) -> str:
    """Run one command that must fail (exit status 1); its output as one line, the terminal's wrapping undone."""
    who = ["--dev-account", str(dev)] if dev is not None else []
    result = RUNNER.invoke(app, [*base, *who, *args], env={"FEDMARKET_PASSWORD": PASSWORD, "COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    return " ".join(result.output.split())


def start_aggregator(base: list[str], workdir: Path, task_id: int, stall: str = "") -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "client.cli", *base, "--dev-account", "1", "--json", "aggregate", "run",
               "--x25519-key", str(workdir / "data" / "aggregator.x25519.json"), "--task", str(task_id),
               "--poll", "0.2", "--state-dir", str(workdir / "aggregator")]  # fmt: skip
    env = os.environ | {"FEDMARKET_PASSWORD": PASSWORD, "FEDMARKET_HOME": str(workdir)}
    if stall:
        env["FEDMARKET_DAEMON_STALL"] = stall  # the daemon sleeps at this stage, so the SIGKILL lands mid-round
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def shifted_model(ev: RoundEvidence) -> RoundEvidence:
    """The round's evidence with its model file off by 0.5 in one weight, as a hostile chain or IPFS source
    could serve it."""
    model = {k: v.copy() for k, v in (ev.model or {}).items()}
    model[next(iter(model))].flat[0] += np.float32(0.5)
    return dataclasses.replace(ev, model=model)


def one_owner_task(base: list[str], workdir: Path, start: bool = True) -> int:
    """A task from the example spec with owner-1.csv (dev account 2) joined; started unless `start` is False."""
    task_id = int(cli(base, "task", "publish", str(workdir / "task.toml"), dev=0)["task_id"])
    cli(base, "join", str(task_id), "--data", str(workdir / "data" / "owner-1.csv"), dev=2)
    if start:
        cli(base, "task", "start", str(task_id), dev=0)
    return task_id


def closed(contract: MarketplaceContract, task_id: int, round_: int) -> bool:
    info = contract.get_task(task_id)
    return info.current_round > round_ or info.status is not TaskStatus.RUNNING


def test_full_task_through_the_commands(
    workdir: Path, anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract
) -> None:
    base = base_args(anvil, ipfs_node, marketplace)
    data = [workdir / "data" / f"owner-{i}.csv" for i in (1, 2, 3)]
    published = cli(base, "task", "publish", str(workdir / "task.toml"), dev=0)
    task_id = published["task_id"]
    assert published["proof"] == "pedersen" and published["verifier"]
    assert [t["task_id"] for t in cli(base, "task", "list")] == [task_id]
    shown = cli(base, "task", "show", str(task_id))
    assert shown["model"]["kind"] == "logreg" and shown["protocol"]["proof"] == "pedersen"
    for i, path in enumerate(data):
        cli(base, "join", str(task_id), "--data", str(path), dev=2 + i)
    def refused_join(dev: int) -> str:  # the data owner's checks speak before the contract would revert
        return refused(base, "join", str(task_id), "--data", str(data[0]), dev=dev)

    assert "has already joined" in refused_join(2)
    cli(base, "task", "start", str(task_id), dev=0)
    assert f"task {task_id} is running: joining closed when it started" in refused_join(5)
    saved = workdir / "update-round-1"  # no .npz suffix: the file keeps the name it was given
    trained = cli(base, "train", str(task_id), "--data", str(data[0]), "--out", str(saved), dev=2)
    assert trained["accuracy_after"] > trained["accuracy_before"] and trained["saved"] == str(saved)

    aggregator = start_aggregator(base, workdir, task_id)
    try:
        for round_ in (1, 2):
            if round_ == 2:  # the round-1 file was trained from the round-1 model: refused, nothing sent
                stale = refused(base, "submit", str(task_id), "--data", str(data[0]), "--update", str(saved), dev=2)
                assert "was trained in round 1" in stale
            for i, path in enumerate(data):
                extra = ["--update", str(saved)] if (round_, i) == (1, 0) else []
                sent = cli(base, "submit", str(task_id), "--data", str(path), *extra, dev=2 + i)
                assert sent["round"] == round_
            wait_for(lambda r=round_: closed(marketplace, task_id, r), 90, f"round {round_}")  # type: ignore[misc]
        assert aggregator.wait(timeout=60) == 0
    finally:
        if aggregator.poll() is None:
            aggregator.kill()
    log = [json.loads(line) for line in (workdir / "aggregator" / "rounds.jsonl").read_text().splitlines()]
    finalized = [e for e in log if e["event"] == "finalized"]
    assert [e["round"] for e in finalized] == [1, 2]
    assert [(e["accepted"], e["rejected"], e["rejections"]) for e in finalized] == [(3, 0, [])] * 2  # all honest

    status = cli(base, "task", "status", str(task_id))
    assert status["status"] == "finished" and [r["status"] for r in status["rounds_detail"]] == ["settled"] * 2
    # RFFL reputations are normalised: read at the chain's scale (2^20 = 1) they sum to 1
    assert all(abs(sum(r["reputations"]) - 1) < 1e-5 for r in status["rounds_detail"])
    model = workdir / "model.safetensors"
    assert cli(base, "task", "model", str(task_id), "--out", str(model))["final"] is True
    nowhere = refused(base, "task", "model", str(task_id), "--out", str(workdir / "no" / "m.st"))
    assert "No such file or directory" in nowhere  # one line, no traceback
    audited = cli(base, "audit", str(task_id), "--model", str(model))
    assert audited["passed"] is True
    assert {"aggregation", "model opening", "model file", "rules", "contributions", "payouts"} <= {
        c["name"] for c in audited["checks"]
    }

    tampered = workdir / "tampered.safetensors"
    raw = bytearray(model.read_bytes())
    raw[-1] ^= 1
    tampered.write_bytes(bytes(raw))
    failed = cli(base, "audit", str(task_id), "--model", str(tampered), code=1)
    assert [c["name"] for c in failed["checks"] if not c["passed"]] == ["tampered.safetensors is the task's model"]

    earned = cli(base, "earnings", str(task_id), dev=2)
    assert earned[0]["withdrawable"] and earned[0]["earned"] > 0
    withdrawn = [cli(base, "withdraw", str(task_id), dev=2 + i)["amount"] for i in range(3)]
    after = cli(base, "earnings", str(task_id), dev=2)[0]  # the contract zeroed it; the events still say
    assert after["withdrawn"] and after["total"] == 0 and after["withdrawn_amount"] == withdrawn[0]
    dust = 3 * 10**18 + 3 * 10**17 - sum(withdrawn)  # the payout split's rounding goes back to the owner
    assert 0 < dust < 10**12
    refunded = RUNNER.invoke(app, [*base, "--dev-account", "0", "task", "refund", str(task_id)])
    assert refunded.exit_code == 0 and f"refunded {dust} wei" in refunded.output  # not "0.000000 ETH"
    assert marketplace.session.balance(marketplace.address) == 0


def test_aggregator_killed_mid_round_resumes_and_posts_once(
    workdir: Path, anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract
) -> None:
    base = base_args(anvil, ipfs_node, marketplace)
    spec = workdir / "task.toml"
    spec.write_text(spec.read_text().replace("rounds = 2", "rounds = 1"))
    data = [workdir / "data" / f"owner-{i}.csv" for i in (1, 2)]
    task_id = cli(base, "task", "publish", str(spec), dev=0)["task_id"]
    for i, path in enumerate(data):
        cli(base, "join", str(task_id), "--data", str(path), dev=5 + i)
    cli(base, "task", "start", str(task_id), dev=0)
    for i, path in enumerate(data):
        cli(base, "submit", str(task_id), "--data", str(path), dev=5 + i)

    state = workdir / "aggregator"
    first = start_aggregator(base, workdir, task_id, stall="proving")  # fetched and planned, then stalls
    try:
        wait_for(lambda: (state / "stalled-proving").exists() or first.poll() is not None, 90, "the stall")
        assert first.poll() is None, first.stdout.read() if first.stdout else ""
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert marketplace.get_task(task_id).current_round == 1  # nothing was posted

    second = start_aggregator(base, workdir, task_id)
    assert second.wait(timeout=90) == 0, second.stdout.read() if second.stdout else ""
    finalized = marketplace.events("RoundFinalized", taskId=task_id)
    assert [e.round for e in finalized] == [1]  # type: ignore[attr-defined]
    assert marketplace.get_task(task_id).status is TaskStatus.FINISHED
    progress = json.loads((state / f"task-{task_id}.json").read_text())
    assert progress["restarts"] == 1 and progress["rounds"]["1"]["stage"] in ("posted", "settled")
    log = [json.loads(line) for line in (state / "rounds.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log].count("aggregating") == 2
    assert [e["round"] for e in log if e["event"] == "finalized"] == [1]
    assert cli(base, "audit", str(task_id))["passed"] is True


def test_audit_command_fails_on_a_tampered_model_a_wrong_weight_and_a_forged_proof(
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, anvil: LocalAnvil,  # type: ignore[no-untyped-def]
    ipfs_node: LocalIpfsNode, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A Groth16 task (small model: the proof takes seconds). The contract refuses wrong weights and forged
    proofs, so they are put into the evidence the command audits, as a hostile source of public data would."""
    files = TaskFiles(ipfs)
    market = build_market(marketplace, session_for, files, proof="groth16", rounds=1)
    market.submit_all(1)
    market.aggregator.aggregate_round(market.task_id, 1)
    base = base_args(anvil, ipfs_node, marketplace)
    honest = cli(base, "audit", str(market.task_id))
    assert honest["passed"] is True and "rules proof (Groth16)" in {c["name"] for c in honest["checks"]}
    assert cli(base, "audit", str(market.task_id), "--round", "1")["checks"] == honest["checks"]
    assert "has no finalized round 2 (finalized: 1)" in refused(base, "audit", str(market.task_id), "--round", "2")

    gather = client.audit.gather

    def audit_with(tamper: Callable[[RoundEvidence], RoundEvidence]) -> set[str]:
        monkeypatch.setattr(client.audit, "gather", lambda *a: [tamper(ev) for ev in gather(*a)])
        report = cli(base, "audit", str(market.task_id), code=1)
        monkeypatch.setattr(client.audit, "gather", gather)
        return {c["name"] for c in report["checks"] if not c["passed"]}

    def wrong_weight(ev: RoundEvidence) -> RoundEvidence:
        weights = list(ev.event.weights)
        weights[0] += 1
        record = dataclasses.replace(ev.record, weights=weights)  # type: ignore[type-var]
        return dataclasses.replace(ev, event=dataclasses.replace(ev.event, weights=tuple(weights)), record=record)

    def forged_proof(ev: RoundEvidence) -> RoundEvidence:
        proof = bytearray(ev.proof)
        proof[200] ^= 1
        return dataclasses.replace(ev, proof=bytes(proof))

    def tampered_link(ev: RoundEvidence) -> RoundEvidence:  # rffl-v2: the record's Σ-proof, one coordinate off
        link = json.loads(json.dumps(ev.record.link))  # type: ignore[union-attr]
        link["proof"]["sigma"][0] = str(int(link["proof"]["sigma"][0]) + 1)
        return dataclasses.replace(ev, record=dataclasses.replace(ev.record, link=link))  # type: ignore[type-var]

    assert audit_with(tampered_link) == {"poseidon-pedersen link"}
    assert "model file" in audit_with(shifted_model)
    assert {"aggregation", "rules", "rules proof (Groth16)"} <= audit_with(wrong_weight)
    assert "rules proof (Groth16)" in audit_with(forged_proof)


def test_cancel_before_start_returns_every_wei_and_watch_reports_it(
    workdir: Path, anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract
) -> None:
    base = base_args(anvil, ipfs_node, marketplace)
    task_id = one_owner_task(base, workdir, start=False)
    # only the owner cancels before the start
    assert "error" in refused(base, "task", "cancel", str(task_id), dev=3).lower()
    assert marketplace.get_task(task_id).status is TaskStatus.OPEN

    cli(base, "task", "cancel", str(task_id), dev=0)
    assert marketplace.get_task(task_id).status is TaskStatus.CANCELLED
    assert cli(base, "task", "watch", str(task_id)) == []  # the watch ends at once: no round ever opened
    stake = cli(base, "withdraw", str(task_id), dev=2)["amount"]
    refund = cli(base, "task", "refund", str(task_id), dev=0)["amount"]
    assert stake == 10**17 and refund == 3 * 10**18  # the spec's stake (0.1 ether) and reward (3 ether)
    assert marketplace.session.balance(marketplace.address) == 0


def test_an_aggregator_with_the_wrong_account_or_key_touches_nothing(
    workdir: Path, anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract
) -> None:
    base = base_args(anvil, ipfs_node, marketplace)
    task_id = one_owner_task(base, workdir)
    cli(base, "submit", str(task_id), "--data", str(workdir / "data" / "owner-1.csv"), dev=2)
    right_key = workdir / "data" / "aggregator.x25519.json"
    other_key = workdir / "other.x25519.json"
    cli(base, "account", "x25519-new", str(other_key))

    def run_once(dev: int, key: Path) -> str:
        return refused(base, "aggregate", "run", "--x25519-key", str(key), "--task", str(task_id),
                       "--state-dir", str(workdir / f"agg-{dev}"), dev=dev)  # fmt: skip

    assert f"task {task_id}'s aggregator is" in run_once(5, right_key)
    assert "sealed to X25519 key" in run_once(1, other_key)  # every update would fail to open: none is refused

    # watching every task of the account, it says why it leaves this one alone and posts nothing
    command = [sys.executable, "-m", "client.cli", *base, "--dev-account", "1", "--json", "aggregate", "run",
               "--x25519-key", str(other_key), "--poll", "0.2", "--state-dir", str(workdir / "agg-all")]  # fmt: skip
    env = os.environ | {"FEDMARKET_PASSWORD": PASSWORD, "FEDMARKET_HOME": str(workdir)}
    daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert daemon.stdout is not None
        events = []
        for line in daemon.stdout:
            if line.startswith("{"):
                events.append(json.loads(line))
                if events[-1].get("task_id") == task_id:
                    break
        assert events[-1]["event"] == "left_alone" and "sealed to X25519 key" in events[-1]["reason"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    assert marketplace.get_task(task_id).current_round == 1 and marketplace.get_round(task_id, 1).submitted == 1
    assert not marketplace.events("RoundFinalized", taskId=task_id)


def test_watch_into_a_pipe_prints_the_table_while_the_task_runs(
    workdir: Path, anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract
) -> None:
    import select

    base = base_args(anvil, ipfs_node, marketplace)
    task_id = one_owner_task(base, workdir)
    watcher = subprocess.Popen([sys.executable, "-m", "client.cli", *base, "task", "watch", str(task_id),
                                "--interval", "0.2"], stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert watcher.stdout is not None
        ready, _, _ = select.select([watcher.stdout], [], [], 60)  # a live redraw would show nothing until the end
        assert ready and f"task {task_id}: running, round 1/" in watcher.stdout.readline()
        assert watcher.poll() is None  # still watching
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=30)


def test_auditors_dispute_a_round_and_the_arbiter_rejects_then_voids(
    workdir: Path, anvil: LocalAnvil, ipfs_node: LocalIpfsNode, marketplace: MarketplaceContract, accounts,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = base_args(anvil, ipfs_node, marketplace)
    arbiter, auditor = accounts[6].address, 7
    spec = workdir / "task.toml"
    spec.write_text(spec.read_text().replace("dispute_window = 0 ", f'dispute_window = "1h"\narbiter = "{arbiter}"\n'
                                             'challenge_bond = "0.05 ether"\n#'))  # fmt: skip
    task_id = one_owner_task(base, workdir)
    cli(base, "submit", str(task_id), "--data", str(workdir / "data" / "owner-1.csv"), dev=2)
    aggregator = start_aggregator(base, workdir, task_id)
    try:
        wait_for(lambda: marketplace.get_round(task_id, 1).status is RoundStatus.FINALIZED, 90, "round 1 posted")
    finally:
        aggregator.send_signal(signal.SIGTERM)
        aggregator.wait(timeout=30)

    # an honest round: the auditor's own audit finds nothing, so no bond is posted on it
    assert "passes all" in refused(base, "dispute", "open", str(task_id), "1", dev=auditor)

    # a model file that is not what the commitments say (served so by a hostile node): the audit is the evidence
    gather = client.audit.gather

    monkeypatch.setattr(client.audit, "gather", lambda *a: [shifted_model(ev) for ev in gather(*a)])
    opened = cli(base, "dispute", "open", str(task_id), "1", dev=auditor)
    monkeypatch.setattr(client.audit, "gather", gather)
    published = json.loads(IpfsClient(ipfs_node.api_url).cat(opened["evidence_cid"], 1 << 20))
    assert opened["bond"] == 5 * 10**16 and "model file" in published["failed"]
    evidence = workdir / "evidence.json"
    evidence.write_text('{"claim": "the contributions were recomputed differently"}')
    assert "already disputes" in refused(base, "dispute", "open", str(task_id), "1", "--evidence", str(evidence), dev=3)
    assert "arbiter is" in refused(base, "dispute", "resolve", str(task_id), "1", "--reject", dev=auditor)
    rejected = cli(base, "dispute", "resolve", str(task_id), "1", "--reject", dev=6)
    assert not rejected["upheld"] and rejected["to_pool"] == 5 * 10**16  # the bond goes to the round's owners

    # the window stays open to another challenger, with evidence of its own
    assert "cannot read evidence file" in refused(base, "dispute", "open", str(task_id), "1", "--evidence",
                                                  str(workdir / "missing.json"), dev=3)  # fmt: skip
    again = cli(base, "dispute", "open", str(task_id), "1", "--evidence", str(evidence), dev=3)
    assert IpfsClient(ipfs_node.api_url).cat(again["evidence_cid"], 1 << 10) == evidence.read_bytes()
    ruled = cli(base, "dispute", "resolve", str(task_id), "1", "--uphold", dev=6)
    assert ruled["upheld"] and ruled["challenger_credit"] == 5 * 10**16  # the bond back (no aggregator bond)
    assert marketplace.get_round(task_id, 1).status is RoundStatus.VOIDED
    assert "voided" in refused(base, "dispute", "open", str(task_id), "1", "--evidence", str(evidence), dev=4)
    owed = cli(base, "earnings", dev=3)  # not a member of the task, yet owed: it shows, and can be taken now
    assert [(r["task_id"], r["challenge_credit"], r["withdrawable"]) for r in owed] == [(task_id, 5 * 10**16, True)]
    assert cli(base, "withdraw", str(task_id), dev=3)["amount"] == 5 * 10**16
