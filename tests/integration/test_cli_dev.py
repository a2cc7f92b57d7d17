"""`fedmarket dev up` on a machine with no ~/.fedmarket yet: it starts the chain and IPFS node, writes the config
the other commands read, and `fedmarket dev down` stops it by the process id it recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


def test_dev_up_writes_a_config_and_dev_down_stops_it(tmp_path: Path) -> None:
    home, config = tmp_path / "fresh-home", tmp_path / "elsewhere" / "dev.toml"  # neither folder exists yet
    env = os.environ | {"FEDMARKET_HOME": str(home)}
    env.pop("FEDMARKET_CONFIG", None)
    command = [sys.executable, "-m", "client.cli", "--json", "dev", "up", "--write-config", str(config)]
    up = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not (home / "dev.pid").exists():
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline, "dev up did not come up within 90 s"
            time.sleep(0.3)
        assert int((home / "dev.pid").read_text()) == up.pid and config.exists()
        listed = _cli(env, "--config", str(config), "--json", "task", "list")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert json.loads(listed.stdout) == []  # a fresh Marketplace, reachable through the written config
        down = _cli(env, "--json", "dev", "down")
        assert down.returncode == 0 and json.loads(down.stdout) == {"stopped": up.pid}
        assert up.wait(timeout=60) == 0
        assert not (home / "dev.pid").exists()
        again = _cli(env, "dev", "down")
        assert again.returncode != 0 and "no `fedmarket dev up` is running" in again.stdout + again.stderr
    finally:
        if up.poll() is None:
            up.terminate()
            up.wait(timeout=30)
