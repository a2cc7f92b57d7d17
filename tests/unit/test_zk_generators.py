"""Pedersen generators: derived from the tag, on the curve, cached on disk and extended by prefix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from zk import generators as gen
from zk import mcl
from zk.curve import FIELD_MODULUS, is_on_curve


@pytest.fixture(autouse=True)
def _fresh_memory() -> None:
    gen.forget_in_memory()


def _files(cache: Path) -> Path:
    (directory,) = (cache / "generators").iterdir()
    return directory


def test_fast_derivation_matches_the_plain_python_definition(tmp_path: Path) -> None:
    gens = gen.load_generators(24, cache=tmp_path)
    assert gens.points() == [gen.reference_generator(gen.DEFAULT_TAG, b"G", j) for j in range(24)]
    assert gens.h == gen.reference_generator(gen.DEFAULT_TAG, b"H", 0)
    assert all(is_on_curve(p) for p in [*gens.points(), gens.h])
    assert len({*gens.points(), gens.h}) == 25
    assert all(mcl.g1_to_affine(gens.raw[j]) == gens.point(j) for j in range(24))


def test_derivation_is_deterministic_and_tag_separated(tmp_path: Path) -> None:
    first = gen.load_generators(8, cache=tmp_path / "a")
    gen.forget_in_memory()
    again = gen.load_generators(8, cache=tmp_path / "b")
    other = gen.load_generators(8, tag="another/tag", cache=tmp_path / "a")
    assert first.points() == again.points() and first.h == again.h
    assert not set(first.points()) & set(other.points())
    assert first.h != other.h
    # y is the smaller square root, so the point is unique for its x
    assert all(y <= (FIELD_MODULUS - 1) // 2 for _, y in first.points())


def test_cache_is_reused_without_deriving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gen.load_generators(10, cache=tmp_path)
    meta = json.loads((_files(tmp_path) / "meta.json").read_text())
    assert meta["count"] == 10 and meta["tag"] == gen.DEFAULT_TAG
    gen.forget_in_memory()

    def refuse(*args: object) -> None:
        raise AssertionError("derived although the cache holds the generators")

    monkeypatch.setattr(gen, "_derive_fast", refuse)
    assert gen.load_generators(10, cache=tmp_path).d == 10
    assert gen.load_generators(4, cache=tmp_path).d == 4


def test_a_larger_d_extends_the_cached_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small = gen.load_generators(6, cache=tmp_path)
    gen.forget_in_memory()
    calls: list[tuple[bytes, int, int]] = []
    original = gen._derive_fast

    def spy(tag: str, label: bytes, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append((label, start, stop))
        return original(tag, label, start, stop)

    monkeypatch.setattr(gen, "_derive_fast", spy)
    large = gen.load_generators(9, cache=tmp_path)
    assert calls == [(b"G", 6, 9)]
    assert large.points()[:6] == small.points()
    assert json.loads((_files(tmp_path) / "meta.json").read_text())["count"] == 9


def test_a_corrupted_cache_is_rebuilt(tmp_path: Path) -> None:
    expected = gen.load_generators(5, cache=tmp_path).points()
    gen.forget_in_memory()
    path = _files(tmp_path) / "affine.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert gen.load_generators(5, cache=tmp_path).points() == expected


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDMARKET_CACHE_DIR", str(tmp_path / "env"))
    gen.load_generators(2)
    assert (tmp_path / "env" / "generators").is_dir()
