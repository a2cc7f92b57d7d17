"""The auditor's py_ecc verifier: accepts honest rounds, names what is wrong otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from py_ecc import optimized_bn128 as bn

from zk import auditor, mcl, pedersen
from zk.generators import forget_in_memory, load_generators

D = 32


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    forget_in_memory()
    return tmp_path


@pytest.fixture
def round_data(cache: Path) -> dict[str, object]:
    rng = np.random.default_rng(7)
    gens = load_generators(D, cache=cache)
    updates = [rng.integers(-1000, 1000, size=D) for _ in range(3)]
    blindings = [pedersen.random_blinding() for _ in updates]
    weights = [5, 0, 9]
    commitments = [pedersen.commit(u, b, generators=gens) for u, b in zip(updates, blindings, strict=True)]
    return {
        "commitments": commitments,
        "weights": weights,
        "model": pedersen.aggregate_commitment(commitments, weights),
        "values": pedersen.aggregate_values(updates, weights),
        "blinding": pedersen.aggregate_blinding(blindings, weights),
    }


def test_py_ecc_msm_matches_scalar_multiplication() -> None:
    points = [bn.multiply(bn.G1, k) for k in (3, 5, 7, 11)]
    scalars = [2**40 + 3, -17, 0, 65535]
    expected = bn.Z1
    for p, s in zip(points, scalars, strict=True):
        expected = bn.add(expected, bn.multiply(p, s % bn.curve_order))
    assert bn.normalize(auditor.msm(points, scalars)) == bn.normalize(expected)
    assert auditor.msm(points, [0, 0, 0, 0]) == bn.Z1


def test_honest_round_passes_every_check(round_data: dict, cache: Path) -> None:
    checks = auditor.audit_round(
        round_data["commitments"],
        round_data["weights"],
        round_data["model"],
        round_data["values"],
        round_data["blinding"],
        generator_sample=None,
        cache=cache,
    )
    assert [c.name for c in checks] == ["aggregation", "generators", "model opening"]
    assert all(c.passed for c in checks), [str(c) for c in checks]
    assert auditor.PY_ECC in str(checks[2])


def test_wrong_weight_fails_aggregation(round_data: dict) -> None:
    check = auditor.check_aggregation(round_data["commitments"], [5, 0, 8], round_data["model"])
    assert not check.passed and "NOT the weighted sum" in check.detail


def test_malformed_commitment_fails_with_a_reason(round_data: dict) -> None:
    commitments = [*round_data["commitments"][:2], (1, 3)]
    check = auditor.check_aggregation(commitments, round_data["weights"], round_data["model"])
    assert not check.passed and "commitment 2" in check.detail


@pytest.mark.parametrize("method", ["py_ecc", "fast"])
def test_altered_model_fails_opening(round_data: dict, method: str, cache: Path) -> None:
    values = round_data["values"].copy()
    ok = auditor.open_model(values, round_data["blinding"], round_data["model"], method=method, cache=cache)
    values[3] += 1
    bad = auditor.open_model(values, round_data["blinding"], round_data["model"], method=method, cache=cache)
    assert ok.passed and not bad.passed
    assert "does NOT open" in bad.detail
    assert ("not independent" in bad.library) == (method == "fast")


def test_out_of_range_model_fails_opening(round_data: dict, cache: Path) -> None:
    check = auditor.open_model(round_data["values"], round_data["blinding"], round_data["model"], bound=10, cache=cache)
    assert not check.passed and "out of range" in check.detail


def test_planted_generator_is_caught(cache: Path) -> None:
    gens = load_generators(D, cache=cache)
    forget_in_memory()
    (directory,) = (cache / "generators").iterdir()
    fake = mcl.g1_mul(gens.raw[1], 2)  # a point whose discrete log w.r.t. G_1 is known
    x, y = mcl.g1_to_affine(fake)
    affine = np.load(directory / "affine.npy")
    raw = np.load(directory / "mcl.npy")
    affine[1] = np.frombuffer(x.to_bytes(32, "big") + y.to_bytes(32, "big"), dtype=np.uint8)
    raw[1] = mcl.g1_from_affine((x, y))
    np.save(directory / "affine.npy", affine)
    np.save(directory / "mcl.npy", raw)
    meta = json.loads((directory / "meta.json").read_text())
    meta["affine_sha256"] = hashlib.sha256(affine.tobytes()).hexdigest()
    (directory / "meta.json").write_text(json.dumps(meta))
    check = auditor.check_generators(D, sample=None, cache=cache)
    assert not check.passed and "first bad index 1" in check.detail
