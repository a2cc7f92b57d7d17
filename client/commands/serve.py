"""`fedmarket serve`: the event indexer and web dashboard (client.serve), mounted when it is installed."""

from __future__ import annotations

import typer

from client.commands.context import reports_errors, state_of
from marketplace.errors import FedmarketError


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


@reports_errors
def serve(
    ctx: typer.Context,
    db_url: str | None = typer.Option(None, help="SQLAlchemy URL of the index (default: a local SQLite file)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    start_block: int = typer.Option(0, help="First block to index."),
) -> None:
    """Index the Marketplace's events into SQL and serve the REST API and dashboard until Ctrl-C.

    Example: fedmarket --config ~/.fedmarket/dev.toml serve --port 8000
    """
    from client.serve import serve as run_service

    state = state_of(ctx)
    if not state.settings.marketplace:
        raise FedmarketError("no Marketplace contract address", hint="pass --marketplace or use `fedmarket dev up`")
    options = {"db_url": db_url} if db_url else {}
    run_service(state.settings.rpc_url, state.settings.marketplace, ipfs_api=state.settings.ipfs_api, host=host,
                port=port, start_block=start_block, **options)  # fmt: skip
