"""The task spec file: amounts, durations and every refusal happen before anything is spent."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from aggregator.protocol import filter_pipeline
from client.audit import check_recorded_rules
from client.commands.hints import explain
from client.spec_file import SpecFileError, load_spec_file, parse_amount, parse_duration
from marketplace.chain.marketplace_contract import Rules
from marketplace.errors import ContractRevert, DataSchemaError
from marketplace.task_spec import ProtocolSpec
from marketplace.text import duration_text

KEY = "0x" + "11" * 32
SPEC = """
[task]
name = "t"
reward = "1.5 ether"
stake = "20 gwei"
rounds = 3
max_data_owners = 4
round_duration = "30m"
[model]
hidden = [8]
[data]
num_features = 3
num_classes = 2
validation = "val.npz"
[aggregator]
address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
public_key = "KEY"
"""


def write(tmp_path: Path, text: str = SPEC, features: int = 3) -> Path:
    np.savez(tmp_path / "val.npz", X=np.zeros((5, features), np.float32), y=np.array([0, 1, 0, 1, 1]))
    path = tmp_path / "task.toml"
    path.write_text(text.replace("KEY", KEY))
    return path


def test_amounts_and_durations() -> None:
    assert parse_amount("1.5 ether", "x") == 15 * 10**17
    assert parse_amount(7, "x") == 7 and parse_amount("20 gwei", "x") == 20 * 10**9
    assert parse_duration("30m", "x") == 1800 and parse_duration("7d", "x") == 7 * 86400
    with pytest.raises(SpecFileError, match="unit"):
        parse_amount("1 bitcoin", "x")
    with pytest.raises(SpecFileError, match="duration"):
        parse_duration("soon", "x")
    # `task show` writes a period back the way the spec wrote it
    for written in ("45s", "30m", "1h", "7d"):
        assert parse_duration(duration_text(parse_duration(written, "x")), "x") == parse_duration(written, "x")
    assert duration_text(parse_duration("90s", "x")) == "1m 30s" and duration_text(0) == "0s"
    assert duration_text(parse_duration("1.5h", "x")) == "1h 30m" and duration_text(86400 + 5) == "1d 5s"


def test_a_good_spec_loads(tmp_path: Path) -> None:
    spec = load_spec_file(write(tmp_path))
    assert spec.terms.reward == 15 * 10**17 and spec.terms.round_duration == 1800
    assert spec.model.hidden == (8,) and len(spec.validation) == 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('"1.5 ether"', '"1.5 bananas"'), "unit"),
        (lambda s: s.replace("KEY", "0x1234"), "X25519"),
        (lambda s: s.replace("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "nobody"), "Ethereum address"),
        (lambda s: s.replace("rounds = 3", "rounds = 0"), "rounds"),
        (lambda s: s + "[surprise]\n", "unknown"),
        (lambda s: s.replace('"val.npz"', '"missing.csv"'), "cannot read"),
        (lambda s: s.replace('round_duration = "30m"', 'round_duration = "30m"\ndispute_window = "1h"'), "arbiter"),
    ],
)
def test_bad_specs_are_refused(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((SpecFileError, DataSchemaError), match=message):
        load_spec_file(write(tmp_path, edit(SPEC)))


def test_a_dispute_window_comes_with_an_arbiter_a_bond_and_a_period(tmp_path: Path) -> None:
    arbiter = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    disputes = f'round_duration = "30m"\ndispute_window = "1h"\narbiter = "{arbiter}"\nchallenge_bond = "0.05 ether"'
    terms = load_spec_file(write(tmp_path, SPEC.replace('round_duration = "30m"', disputes))).terms
    assert (terms.dispute_window, terms.arbitration_period, terms.challenge_bond) == (3600, 3600, 5 * 10**16)
    assert terms.on_chain().arbiter == arbiter


def test_validation_data_must_match_the_schema(tmp_path: Path) -> None:
    with pytest.raises(DataSchemaError, match="expected"):
        load_spec_file(write(tmp_path, features=4))


def test_reverts_come_with_a_next_step() -> None:
    text = explain(ContractRevert("JoinClosed", {"deadline": 1, "timestamp": 2}))
    assert "JoinClosed" in text and "fedmarket task list" in text


def test_a_protocol_section_becomes_the_task_spec_rules(tmp_path: Path) -> None:
    text = SPEC + '[protocol]\nproof = "pedersen"\ngamma = 8.0\nbeta = "1/3"\n'
    text += 'filters = [{ name = "norm_outlier", k = 4.0 }]\n'
    spec = load_spec_file(write(tmp_path, text))
    assert spec.protocol is not None and spec.protocol.proof == "pedersen" and spec.protocol.beta == "1/3"
    cid = "bafkreicy2tje3kefe3zlcgirtdtdwcfmkxaot2do4nbj5yytem6rvldil4"
    task = spec.task_spec(cid)
    assert task.rules == spec.protocol and task.bound == spec.protocol.bound
    assert load_spec_file(write(tmp_path)).task_spec(cid).rules is None
    # the chain records the α, β and Γ the aggregator runs (Γ at the task's scale, 2^16 by default)
    recorded = spec.terms.rules
    assert (recorded.alpha_ppm, recorded.beta_ppm, recorded.clip_norm) == (950_000, 333_333, 8 << 16)
    halved = load_spec_file(write(tmp_path, text.replace('beta = "1/3"', 'beta = "1/3"\nalpha = "1/2"')))
    assert halved.terms.rules.alpha_ppm == 500_000 and halved.terms.rules.slash_bps == 5_000
    with pytest.raises(SpecFileError, match=r"\[rules\] alpha: a task with \[protocol\] sets"):
        load_spec_file(write(tmp_path, text.replace("[protocol]", "[rules]\nalpha = 0.9\n[protocol]")))
    # the auditor holds the chain's record to the spec
    chain_terms = halved.terms.on_chain()
    assert check_recorded_rules(chain_terms, halved.task_spec(cid)).passed
    stale = check_recorded_rules(replace(chain_terms, rules=Rules()), halved.task_spec(cid))
    assert not stale.passed and "'alpha_ppm': 500000" in stale.detail


@pytest.mark.parametrize(
    ("protocol", "message"),
    [('proof = "stark"', "proof must be one of"), ("colour = 1", "unknown key"), ("gamma = -1.0", "gamma"),
     ('proof = "groth16"', "min_data_owners == max_data_owners"), ('filters = ["clip"]', "filters"),
     # filters are checked when the file is read, not when the first round is aggregated
     ('filters = [{ name = "norm_outliers" }]', "unknown rules.0. 'norm_outliers'"),
     ('filters = [{ name = "norm_outlier", kk = 4.0 }]', r"unknown field\(s\): kk"),
     ('filters = [{ name = "median" }]', "median/trimmed_mean cannot be filters"),
     ('filters = [{ name = "consistency", outlier_score = "capped" }]', "capped reputation scores filter by filter"),
     ("missing_score = 0.5", r"missing_score must lie in \[-1, 0\]")],
)  # fmt: skip
def test_a_bad_protocol_section_is_refused(tmp_path: Path, protocol: str, message: str) -> None:
    with pytest.raises(SpecFileError, match=message):
        load_spec_file(write(tmp_path, SPEC + f"[protocol]\n{protocol}\n"))


def test_a_protocol_task_may_filter_by_consistency(tmp_path: Path) -> None:
    spec = load_spec_file(write(tmp_path, SPEC + '[protocol]\nfilters = [{ name = "consistency", threshold = 0.4 }]\n'))
    assert spec.protocol is not None and spec.protocol.filters == ({"name": "consistency", "threshold": 0.4},)
    assert filter_pipeline(spec.protocol).needs_history  # the aggregator reads the previous round back
    penalised = '[protocol]\nfilters = [{ name = "consistency" }]\ndropped_score = "capped"\nmissing_score = -0.25\n'
    spec = load_spec_file(write(tmp_path, SPEC + penalised))
    assert spec.protocol is not None and spec.protocol.missing_score == "-0.25"  # exact, as written
    assert spec.protocol.missing_score_fp == -(1 << 18)


def test_a_feature_filter_must_name_the_models_first_layer(tmp_path: Path) -> None:
    entry = '[protocol]\nfilters = [{{ name = "feature_outlier", inputs = 3, units = {units} }}]\n'
    spec = load_spec_file(write(tmp_path, SPEC + entry.format(units=8)))  # [model] hidden = [8], 3 features
    assert spec.protocol is not None and filter_pipeline(spec.protocol, spec.model) is not None
    with pytest.raises(SpecFileError, match="reads a 2 × 3 first layer") as refused:
        load_spec_file(write(tmp_path, SPEC + entry.format(units=2)))
    assert refused.value.hint == "set inputs = 3 and units = 8"


def test_groth16_rule_version_and_filter_threshold_come_from_the_spec_file(tmp_path: Path) -> None:
    fixed = SPEC.replace("max_data_owners = 4", "max_data_owners = 4\nmin_data_owners = 4")
    spec = load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nfilter_threshold = 0.25\n'))
    assert spec.protocol is not None and spec.protocol.rule_version == "rffl-v2"
    assert spec.protocol.filter_threshold == "0.25"
    v1 = load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nrule_version = "rffl-v1"\n'))
    assert v1.protocol is not None and v1.protocol.rule_version == "rffl-v1"
    with pytest.raises(SpecFileError, match=r"rule_version|rule version"):
        load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nrule_version = "rffl-v9"\n'))
    v3 = load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nrule_version = "rffl-v3"\n'
                                                 'norm_ratio = 2.5\n'))  # fmt: skip
    assert v3.protocol is not None and v3.protocol.norm_ratio == "2.5" and v3.protocol.capped
    with pytest.raises(SpecFileError, match="norm_ratio applies to rule versions rffl-v3 and rffl-v4 and to proof"):
        load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nnorm_ratio = 3\n'))
    v4 = load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nrule_version = "rffl-v4"\n'
                                                 'missing_score = "-1/4"\n'))  # fmt: skip
    assert v4.protocol is not None and v4.protocol.missing_score_fp == -(1 << 18) and v4.protocol.capped
    with pytest.raises(SpecFileError, match="missing_score applies to proof pedersen or none and to rule version"):
        load_spec_file(write(tmp_path, fixed + '[protocol]\nproof = "groth16"\nmissing_score = "-1/4"\n'))


def test_removal_rounds_sets_the_rffl_removal_window(tmp_path: Path) -> None:
    spec = load_spec_file(write(tmp_path, SPEC + '[protocol]\nproof = "pedersen"\nbeta = "1/3"\nremoval_rounds = 2\n'))
    rules = spec.protocol
    assert rules is not None and rules.removal_rounds == 2
    assert [rules.beta_in_round(r) for r in (1, 2, 3)] == [Fraction(1, 3), Fraction(1, 3), 0]
    assert ProtocolSpec.from_dict(rules.to_dict()) == rules
    # a spec without the key reads as before (and writes no key): removal in every round
    plain = ProtocolSpec(proof="pedersen")
    assert "removal_rounds" not in plain.to_dict() and plain.beta_in_round(10**6) == Fraction(1, 3)
    for bad in ("-1", "true", "1.5", '"3"'):
        with pytest.raises(SpecFileError, match="removal_rounds"):
            load_spec_file(write(tmp_path, SPEC + f'[protocol]\nproof = "pedersen"\nremoval_rounds = {bad}\n'))
