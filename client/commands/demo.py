"""`fedmarket demo`: the whole marketplace on local services, with a live display, an audit and a report."""

from __future__ import annotations

from pathlib import Path

import typer

from client.commands.context import console, fail
from client.commands.hints import explain
from marketplace.errors import FedmarketError


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    data_owners: int = typer.Option(10, "--owners", min=2, max=30, help="How many data owners join the task."),
    attackers: str = typer.Option(
        "free_rider,sign_flip,scaling", help="Comma-separated attacks, one per attacking data owner "
        "(free_rider, sign_flip, scaling, gaussian; '' for none).",
    ),
    rounds: int = typer.Option(10, min=1, help="Training rounds."),
    dataset: str = typer.Option("digits", help="Bundled data set: digits or breast_cancer."),
    fast: bool = typer.Option(False, help="Skip the layer-2 (Groth16) rules proof: the same filters run unproven; "
                              "layer-1 Pedersen commitments and the on-chain aggregation check stay on."),
    quick: bool = typer.Option(False, help="3 data owners (1 attacker), 3 rounds: a smoke test (add --fast to "
                               "skip the Groth16 setup for n=3)."),
    rule_version: str = typer.Option("rffl-v3", help="Groth16 rule version: rffl-v3 (proven cosine and norm "
                                     "filters), rffl-v4 (also a proven --missing-score), rffl-v2 (cosine filter) or "
                                     "rffl-v1 (rules only). Ignored with --fast."),
    missing_score: str = typer.Option("0", help="What an owner that sends nothing scores, and the most a dropped "
                                      "update scores, in [-1, 0] (e.g. -1/4: such owners leave within a few rounds). "
                                      "Needs --rule-version rffl-v4, or --fast (unproven)."),
    alpha: float = typer.Option(0.5, min=0.01, help="Dirichlet concentration of the non-IID split (small = skewed)."),
    seed: int = typer.Option(0, help="Seed for the data split, model init and training."),
    report_dir: Path | None = typer.Option(None, "--report", help="Report folder (default reports/demo-<time>)."),
    live: bool = typer.Option(True, help="Live display (off: one line per event, for logs)."),
    dashboard: bool = typer.Option(True, help="Index the chain and serve the web dashboard on 127.0.0.1 meanwhile."),
    keep_open: bool = typer.Option(False, help="After the report, keep the chain, IPFS node and dashboard up until "
                                               "Ctrl-C, to look around."),
) -> None:
    """Run a whole task on a local chain and IPFS node, started and stopped for you, then audit and report.

    Example: fedmarket demo --owners 10 --attackers free_rider,sign_flip,scaling --rounds 10
    """
    from client.demo import DemoConfig, render, run_demo

    kinds = tuple(k.strip() for k in attackers.split(",") if k.strip())
    if quick:
        data_owners, rounds, kinds = 3, 3, kinds[:1]
    proof = "pedersen" if fast else "groth16"
    try:
        config = DemoConfig(data_owners=data_owners, rounds=rounds, dataset=dataset, alpha=alpha, seed=seed,
                            attackers=kinds, proof=proof, rule_version=rule_version, missing_score=missing_score,
                            report_dir=report_dir, live=live, dashboard=dashboard, keep_open=keep_open)  # fmt: skip
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        result = run_demo(config, console)
    except FedmarketError as exc:
        raise fail(explain(exc)) from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    render(result, console)
    if not result.conserved or not result.audit_passed:
        raise typer.Exit(2)
