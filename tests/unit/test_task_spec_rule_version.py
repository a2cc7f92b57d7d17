"""ProtocolSpec.rule_version, filter_threshold, norm_ratio, dropped_score and missing_score: rffl-v2 by default for
Groth16 tasks (rffl-v3 adds the norm filter, rffl-v4 a missing score), rffl-v1 for specs published before rule
versions existed, clear errors for anything else; the deterministic link Σ-proof of the round record."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aggregator.fixedpoint import ONE
from marketplace.data import DataSchema
from marketplace.models import ModelSpec
from marketplace.task_spec import ProtocolSpec, TaskSpec, TaskSpecError
from marketplace.updates import generate_keypair, key_to_hex
from zk.auditor_link import check_link
from zk.groth16.linked import link_value, prove_link, verify_link
from zk.pedersen import commit, random_blinding


def test_groth16_defaults_to_rffl_v2_and_round_trips() -> None:
    rules = ProtocolSpec(proof="groth16")
    assert rules.rule_version == "rffl-v2" and rules.linked and rules.filter_threshold_fp == -ONE
    assert ProtocolSpec.from_dict(rules.to_dict()) == rules
    assert ProtocolSpec.from_dict({"proof": "groth16"}).rule_version == "rffl-v2"  # a new spec file
    v1 = ProtocolSpec(proof="groth16", rule_version="rffl-v1", filters=({"name": "norm_outlier", "k": 4.0},))
    assert not v1.linked and ProtocolSpec.from_dict(v1.to_dict()) == v1
    assert ProtocolSpec(proof="pedersen").rule_version == "" and not ProtocolSpec(proof="pedersen").linked
    assert ProtocolSpec(proof="groth16", filter_threshold="1/2").filter_threshold_fp == ONE // 2
    assert ProtocolSpec(proof="groth16", filter_threshold=0.25).filter_threshold_fp == ONE // 4
    assert "norm_ratio" not in rules.to_dict() and not rules.capped  # rffl-v2 documents are as before


def test_rffl_v3_carries_its_norm_ratio() -> None:
    v3 = ProtocolSpec(proof="groth16", rule_version="rffl-v3", filter_threshold="0", norm_ratio="3")
    assert v3.linked and v3.capped and v3.norm_ratio_sq_fp == 9 * ONE
    assert v3.to_dict()["norm_ratio"] == "3" and ProtocolSpec.from_dict(v3.to_dict()) == v3
    assert ProtocolSpec(proof="groth16", rule_version="rffl-v3", norm_ratio="1.5").norm_ratio_sq_fp == 9 * ONE // 4
    off = ProtocolSpec(proof="groth16", rule_version="rffl-v3")
    assert off.norm_ratio_sq_fp == 0 and off.capped  # no norm filter, but dropped rows are still capped
    fast = ProtocolSpec(proof="pedersen", filter_threshold="0", norm_ratio="2")  # the same integers, unproven
    assert fast.fixed_filters and fast.capped and not fast.linked and fast.norm_ratio_sq_fp == 4 * ONE
    assert ProtocolSpec.from_dict(fast.to_dict()) == fast and fast.to_dict()["norm_ratio"] == "2"
    legacy = ProtocolSpec(proof="pedersen", filters=({"name": "norm_outlier", "k": 4.0},))
    assert not legacy.fixed_filters and not legacy.capped and "norm_ratio" not in legacy.to_dict()
    assert "dropped_score" not in legacy.to_dict()  # documents published before the option read as before


def test_a_pedersen_task_may_cap_what_its_filters_drop() -> None:
    consistent = ProtocolSpec(proof="none", filters=({"name": "consistency"},), dropped_score="capped")
    assert consistent.capped and not consistent.fixed_filters
    assert consistent.to_dict()["dropped_score"] == "capped"
    assert ProtocolSpec.from_dict(consistent.to_dict()) == consistent
    assert "missing_score" not in consistent.to_dict() and consistent.missing_score_fp == 0


def test_a_pedersen_task_may_score_dropped_rows_below_nothing() -> None:
    penalised = ProtocolSpec(proof="pedersen", filters=({"name": "consistency"},), dropped_score="capped",
                             missing_score="-1/4")  # fmt: skip
    assert penalised.missing_score_fp == -ONE // 4 and penalised.to_dict()["missing_score"] == "-1/4"
    assert ProtocolSpec.from_dict(penalised.to_dict()) == penalised
    assert ProtocolSpec(proof="groth16", missing_score="0").missing_score_fp == 0  # what rffl-v1 to v3 prove


def test_rffl_v4_proves_a_missing_score() -> None:
    v4 = ProtocolSpec(proof="groth16", rule_version="rffl-v4", filter_threshold="0", norm_ratio="2",
                      missing_score="-1/4")  # fmt: skip
    assert v4.linked and v4.capped and v4.missing_score_fp == -ONE // 4 and v4.norm_ratio_sq_fp == 4 * ONE
    assert v4.to_dict()["missing_score"] == "-1/4" and v4.to_dict()["norm_ratio"] == "2"
    assert ProtocolSpec.from_dict(v4.to_dict()) == v4
    plain = ProtocolSpec(proof="groth16", rule_version="rffl-v4")
    assert plain.capped and plain.missing_score_fp == 0 and "missing_score" not in plain.to_dict()


@pytest.mark.parametrize(
    ("options", "message"),
    [({"proof": "groth16", "rule_version": "rffl-v5"}, "must be one of rffl-v1, rffl-v2, rffl-v3, rffl-v4"),
     ({"proof": "pedersen", "rule_version": "rffl-v2"}, "needs proof"),
     ({"proof": "groth16", "filters": ({"name": "norm_outlier"},)}, "cannot prove filter"),
     ({"proof": "groth16", "filter_threshold": "1.5"}, r"must lie in \[-1, 1\]"),
     ({"proof": "groth16", "filter_threshold": "half"}, "must be a number"),
     ({"proof": "groth16", "rule_version": "rffl-v1", "filter_threshold": "0"}, "rffl-v2 to rffl-v4 and to proof"),
     ({"proof": "groth16", "norm_ratio": "3"}, "rffl-v3 and rffl-v4 and to proof pedersen or none only"),
     ({"proof": "groth16", "rule_version": "rffl-v1", "norm_ratio": "3"}, "rffl-v4 and to proof pedersen"),
     ({"proof": "groth16", "rule_version": "rffl-v3", "norm_ratio": "0.5"}, r"0 \(off\) or in \[1, 64\]"),
     ({"proof": "groth16", "rule_version": "rffl-v3", "norm_ratio": "65"}, r"0 \(off\) or in \[1, 64\]"),
     ({"proof": "groth16", "rule_version": "rffl-v3", "norm_ratio": "big"}, "must be 0 or a number"),
     ({"proof": "groth16", "rule_version": "rffl-v3", "filters": ({"name": "norm_outlier"},)}, "norm_ratio"),
     ({"proof": "pedersen", "filters": ({"name": "near_duplicate", "twin_score": "capped"},)}, "capped reputation"),
     ({"proof": "pedersen", "dropped_score": "zero"}, "dropped_score must be one of cosine, capped"),
     ({"proof": "groth16", "rule_version": "rffl-v1", "dropped_score": "capped"}, "pedersen or none only"),
     ({"proof": "groth16", "rule_version": "rffl-v3", "missing_score": "-1/4"}, "rffl-v3 proves a score of 0"),
     ({"proof": "groth16", "missing_score": "-1/4"}, "rffl-v2 proves a score of 0"),
     ({"proof": "groth16", "rule_version": "rffl-v4", "missing_score": "1/4"}, r"must lie in \[-1, 0\]"),
     ({"proof": "groth16", "rule_version": "rffl-v4", "dropped_score": "capped"}, "pedersen or none only"),
     ({"proof": "pedersen", "missing_score": "0.1"}, r"must lie in \[-1, 0\]"),
     ({"proof": "pedersen", "missing_score": "-2"}, r"must lie in \[-1, 0\]"),
     ({"proof": "pedersen", "missing_score": "low"}, r"must be a number in \[-1, 0\]"),
     ({"proof": "groth16", "rule_version": "rffl-v1",
       "filters": ({"name": "norm_outlier", "outlier_score": "capped"},)}, "capped reputation")],
)  # fmt: skip
def test_bad_rule_versions_are_refused(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(TaskSpecError, match=message):
        ProtocolSpec(**options)


def _spec(protocol: dict) -> TaskSpec:  # type: ignore[type-arg]
    schema = DataSchema(1, 2)
    return TaskSpec(
        name="t", model=ModelSpec("logreg", 1, 2), data_schema=schema, validation_cid="bafkreid",
        aggregator_public_key=key_to_hex(generate_keypair()[1]), protocol=protocol,
    )  # fmt: skip


def test_published_spec_names_its_rule_version_and_old_specs_read_as_v1() -> None:
    published = _spec(ProtocolSpec(proof="groth16", filter_threshold="0").to_dict())
    assert b'"rule_version":"rffl-v2"' in published.to_json()
    back = TaskSpec.from_json(published.to_json())
    assert back.rules is not None and back.rules.rule_version == "rffl-v2" and back.rules.filter_threshold == "0"
    old = ProtocolSpec(proof="groth16", rule_version="rffl-v1").to_dict()
    del old["rule_version"], old["filter_threshold"]  # a spec published before rule versions existed
    legacy = TaskSpec.from_json(_spec(old).to_json().replace(b'"rule_version":"rffl-v2",', b""))
    assert legacy.rules is not None and legacy.rules.rule_version == "rffl-v1"


def test_deterministic_link_proof_is_reproducible_and_sound() -> None:
    rng = np.random.default_rng(1)
    q = rng.integers(-50, 50, size=(3, 8))
    blindings = [random_blinding() for _ in range(3)]
    commitments = [commit(row, b) for row, b in zip(q, blindings, strict=True)]
    submitted = [True, False, True]
    seed = 123456789
    t = link_value(q, submitted, seed)
    first = prove_link(list(q), blindings, commitments, submitted, seed, t, deterministic=True)
    again = prove_link(list(q), blindings, commitments, submitted, seed, t, deterministic=True)
    assert first == again  # a rerun of the round publishes the same record
    assert prove_link(list(q), blindings, commitments, submitted, seed + 1, link_value(q, submitted, seed + 1),
                      deterministic=True).sigma != first.sigma  # fmt: skip
    assert verify_link(commitments, submitted, seed, t, q.shape[1], first)
    assert check_link(commitments, submitted, seed, t, first).passed
    assert not check_link(commitments, submitted, seed, t + 1, first).passed


def test_demo_runs_rffl_v3_for_groth16_and_says_the_setup_is_unsafe() -> None:
    from client.demo import DemoConfig, _prove_seconds

    config = DemoConfig(proof="groth16")
    assert config.rules.rule_version == "rffl-v3" and config.rules.capped and not config.rules.filters
    assert config.rules.norm_ratio == "2" and config.rules.filter_threshold == "0"
    assert "rffl-v3" in config.proof_text and "UNSAFE" in config.proof_text
    assert "cosine" in config.filter_text and "norm filter k=2" in config.filter_text
    v2 = DemoConfig(proof="groth16", rule_version="rffl-v2")
    assert v2.rules.linked and not v2.rules.capped and "rffl-v2" in v2.proof_text
    fast = DemoConfig(proof="pedersen")  # the same filters as rffl-v3, unproven
    assert fast.rules.rule_version == "" and fast.rules.fixed_filters and fast.rules.capped
    assert not fast.rules.filters and "UNSAFE" not in fast.proof_text and "unproven" in fast.filter_text
    v1 = DemoConfig(proof="groth16", rule_version="rffl-v1")
    assert v1.rules.rule_version == "rffl-v1" and "norm_outlier" in v1.filter_text
    v4 = DemoConfig(proof="groth16", rule_version="rffl-v4", missing_score="-1/4")
    assert v4.linked and v4.rules.capped and v4.rules.missing_score_fp == -ONE // 4
    assert "missing score" in v4.proof_text and "missing score -1/4 (rffl-v4)" in v4.filter_text
    unproven = DemoConfig(proof="pedersen", missing_score="-1/4")  # --fast: the same score, unproven
    assert unproven.rules.missing_score_fp == -ONE // 4 and "missing score -1/4 (unproven)" in unproven.filter_text
    with pytest.raises(ValueError, match="rffl-v3 proves a score of 0"):
        DemoConfig(proof="groth16", missing_score="-1/4")
    with pytest.raises(ValueError, match="unknown rule version"):
        DemoConfig(proof="groth16", rule_version="rffl-v9")
    assert _prove_seconds(Path("/nonexistent/log.jsonl")) == []
