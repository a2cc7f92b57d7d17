"""Every command's --help, rendered as a user sees it: nothing the code says is lost on the way.

Typer renders help through rich markup, which swallows any "[word ...]" it takes for a style tag
(the env var and default of an option vanished that way) and keeps a docstring's line breaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from client.cli import app

RUNNER = CliRunner()
BOX = re.compile(r"[│╭╮╰╯─]")


def _commands() -> Iterator[tuple[list[str], object]]:
    def walk(command: object, path: list[str]) -> Iterator[tuple[list[str], object]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


COMMANDS = list(_commands())


def _words(text: str) -> str:
    return " ".join(BOX.sub(" ", text).split())


@pytest.mark.parametrize("path,command", COMMANDS, ids=[" ".join(p) or "fedmarket" for p, _ in COMMANDS])
def test_help_shows_every_option_text_whole(path: list[str], command: object) -> None:
    shown = RUNNER.invoke(app, [*path, "--help"], terminal_width=400, env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    rendered = _words(shown.output)
    for param in getattr(command, "params", []):
        if getattr(param, "help", None):
            assert _words(param.help) in rendered, f"{param.name}: {param.help!r} lost from the help"
    summary = (getattr(command, "help", None) or "").strip().split("\n\n")[0]
    assert "\n" not in summary, f"the command list would break {' '.join(path)!r}'s summary mid-line"
    assert _words(summary) in rendered


def test_global_help_names_the_environment_variables_and_defaults() -> None:
    rendered = _words(RUNNER.invoke(app, ["--help"], terminal_width=400, env={"COLUMNS": "400"}).output)
    for text in ("FEDMARKET_RPC_URL", "FEDMARKET_IPFS_API", "~/.fedmarket/keystore", "~/.fedmarket/config.toml"):
        assert text in rendered
