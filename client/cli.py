"""The `fedmarket` command."""

from __future__ import annotations

import typer
from rich.console import Console

from client.demo import DemoConfig, render, run_demo
from marketplace.errors import FedmarketError

app = typer.Typer(
    help="fedmarket: a blockchain-anchored federated-learning marketplace.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()


@app.callback()
def main() -> None:
    """Publish training tasks, train on private data for rewards, aggregate with proofs, audit everything."""


@app.command()
def demo(
    data_owners: int = typer.Option(4, "--owners", min=1, max=30, help="How many data owners join the task."),
    rounds: int = typer.Option(3, min=1, help="Training rounds."),
    dataset: str = typer.Option("digits", help="Bundled data set: digits or breast_cancer."),
    alpha: float = typer.Option(0.5, min=0.01, help="Dirichlet concentration of the non-IID split (small = skewed)."),
    seed: int = typer.Option(0, help="Seed for the data split, model init and training."),
) -> None:
    """Run a whole task on a local chain and IPFS node, started and stopped for you.

    Example: fedmarket demo --owners 5 --rounds 3
    """
    config = DemoConfig(data_owners=data_owners, rounds=rounds, dataset=dataset, alpha=alpha, seed=seed)
    try:
        result = run_demo(config, console)
    except FedmarketError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    render(result, console)
    if not result.conserved:
        raise typer.Exit(2)


if __name__ == "__main__":
    app()
