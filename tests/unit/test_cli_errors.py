"""Errors the CLI prints carry outside text (paths, spec keys, node messages) exactly as it was.

rich reads "[...]" as a style tag: unescaped, "[top level]" vanished from a spec error and a path
holding "[/ip4]" raised a markup error in place of the message.
"""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from client.cli import app

RUNNER = CliRunner()


def test_a_settings_error_prints_a_bracketed_path_whole(tmp_path: Path) -> None:
    missing = tmp_path / "[/ip4]" / "config.toml"
    result = RUNNER.invoke(app, ["--config", str(missing), "config", "show"], env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    assert f"config file {missing} does not exist" in result.output


def test_a_command_error_keeps_the_spec_section_it_names(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text("stray = 1\n")
    result = RUNNER.invoke(app, ["task", "publish", str(spec), "--dry-run"], env={"COLUMNS": "400"})
    assert result.exit_code == 1, result.output
    assert "error: [top level] has unknown key(s) stray" in result.output
