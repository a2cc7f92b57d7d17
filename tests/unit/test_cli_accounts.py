"""The account commands, driven as a user would: through the CLI and a real terminal prompt."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pexpect
from typer.testing import CliRunner

from client.accounts import load_account
from client.cli import app

RUNNER = CliRunner()


def test_account_new_and_list_as_json(tmp_path: Path) -> None:
    env = {"FEDMARKET_HOME": str(tmp_path), "FEDMARKET_PASSWORD": "pw"}
    created = RUNNER.invoke(app, ["--json", "account", "new"], env=env)
    assert created.exit_code == 0, created.output
    address = json.loads(created.output)["address"]
    listed = json.loads(RUNNER.invoke(app, ["--json", "account", "list"], env=env).output)
    assert [a["address"] for a in listed] == [address]
    assert load_account(Path(listed[0]["path"]), "pw").address == address


def test_import_prompts_hide_the_key_and_password_in_a_terminal(tmp_path: Path) -> None:
    key = "0x" + "42" * 32
    child = pexpect.spawn(
        sys.executable, ["-m", "client.cli", "account", "import"],
        env={"FEDMARKET_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "TERM": "dumb"},
        encoding="utf-8", timeout=60,
    )  # fmt: skip
    child.logfile_read = io.StringIO()  # everything the terminal showed
    child.expect("Private key")
    child.sendline(key)
    child.expect("Password")
    child.sendline("s3cret")
    child.expect("Repeat for confirmation")
    child.sendline("s3cret")
    child.expect("imported (0x[0-9a-fA-F]{40})")
    address = child.match.group(1)
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.logfile_read.getvalue()
    assert child.exitstatus == 0
    assert "42" * 32 not in transcript and "s3cret" not in transcript
    stored = next((tmp_path / "keystore").glob("*.json"))
    opened = load_account(stored, "s3cret")
    assert opened.key.hex() == key[2:] and opened.address == address


def test_config_show_reports_sources(tmp_path: Path) -> None:
    env = {"FEDMARKET_HOME": str(tmp_path), "FEDMARKET_RPC_URL": "http://127.0.0.1:9"}
    result = RUNNER.invoke(app, ["--json", "--chain-id", "7", "config", "show"], env=env)
    shown = json.loads(result.output)
    assert shown["rpc_url"] == {"value": "http://127.0.0.1:9", "source": "env FEDMARKET_RPC_URL"}
    assert shown["chain_id"] == {"value": 7, "source": "flag"}
