"""A Groth16 setup keeps circom's compiler report out of the command's own output: it goes to the key's
compile.log, and its constraint count to meta.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zk.groth16.keys import RULES_V1, compiled_constraints, setup_keys
from zk.groth16.rules import CircuitShape


def test_setup_writes_its_report_beside_the_key(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    keys = setup_keys(CircuitShape(2, 4), tmp_path, spec=RULES_V1)
    printed = capfd.readouterr().out
    assert "constraints" not in printed and "template instances" not in printed
    meta = json.loads((keys.directory / "meta.json").read_text())
    assert meta["constraints"] == compiled_constraints(keys.directory) and meta["constraints"] > 1000
    again = setup_keys(CircuitShape(2, 4), tmp_path, spec=RULES_V1)  # cached: nothing compiled, nothing printed
    assert again.directory == keys.directory and capfd.readouterr().out == ""
