"""Pedersen generators G_1..G_d and H on BN254 G1, hashed to the curve from a public tag.

Nobody may know a discrete-log relation between the generators (Pedersen 1991), otherwise
a committer could open one commitment to two vectors. So every generator is derived by
try-and-increment from a public domain tag, and anyone can re-derive it:

    digest = SHA-512( len(tag) as 2 bytes BE ‖ tag ‖ label ‖ index as 8 bytes BE ‖ counter as 4 bytes BE )
    x      = digest read as a little-endian integer, mod p
    accept the first counter = 0, 1, … for which x³ + 3 is a square in F_p;
    y      = the square root with y ≤ (p − 1)/2

label is b"G" for G_j (index j = 0, 1, …) and b"H" for the blinding generator (index 0).
BN254 G1 has cofactor 1, so every such point is in the prime-order group. G_j and H do not
depend on d, so a longer vector reuses every generator of a shorter one.

Deriving 2^20 generators takes tens of seconds, so they are cached on disk per tag
(`<cache>/generators/<sha256(tag)[:16]>/`), grown when a larger d is asked for, and held in
memory per process. `reference_generator` is the plain-Python definition (used by tests and
by auditors to re-check a cache); the fast path computes the same points with mcl.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from zk import mcl
from zk.cache import atomic_write, cache_dir
from zk.curve import CURVE_B, FIELD_MODULUS, Point

SPEC_VERSION = 1
#: The project's default domain tag; a deployment may choose its own (it is public either way).
DEFAULT_TAG = "fedmarket/pedersen/bn254/v1"
_SQRT_EXPONENT = (FIELD_MODULUS + 1) // 4  # p ≡ 3 (mod 4)
_HALF_P = (FIELD_MODULUS - 1) // 2
_PARALLEL_MIN = 1 << 15


def _digest(tag: bytes, label: bytes, index: int, counter: int) -> bytes:
    return hashlib.sha512(
        len(tag).to_bytes(2, "big") + tag + label + index.to_bytes(8, "big") + counter.to_bytes(4, "big")
    ).digest()


def _tag_bytes(tag: str) -> bytes:
    data = tag.encode()
    if not data or len(data) > 0xFFFF:
        raise ValueError("the domain tag must be 1..65535 bytes")
    return data


def reference_generator(tag: str, label: bytes, index: int) -> Point:
    """The spec above in plain Python (no mcl): slow (~0.2 ms), for tests and audits."""
    tag_bytes = _tag_bytes(tag)
    counter = 0
    while True:
        x = int.from_bytes(_digest(tag_bytes, label, index, counter), "little") % FIELD_MODULUS
        y_squared = (x * x * x + CURVE_B) % FIELD_MODULUS
        y = pow(y_squared, _SQRT_EXPONENT, FIELD_MODULUS)
        if y * y % FIELD_MODULUS == y_squared:
            return (x, y if y <= _HALF_P else FIELD_MODULUS - y)
        counter += 1


def _derive_fast(tag: str, label: bytes, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Generators start..stop−1 as (affine big-endian x‖y bytes (k, 64), mcl points (k, 12))."""
    tag_bytes = _tag_bytes(tag)
    count = stop - start
    raw = np.zeros((count, mcl.G1_WORDS), dtype=np.uint64)
    affine = bytearray(64 * count)
    lifter = mcl.CurveLifter()
    for row in range(count):
        index, counter = start + row, 0
        while True:
            digest = _digest(tag_bytes, label, index, counter)
            y = lifter.lift(digest, raw, row)
            if y is not None:
                break
            counter += 1
        x = int.from_bytes(digest, "little") % FIELD_MODULUS
        affine[64 * row : 64 * row + 32] = x.to_bytes(32, "big")
        affine[64 * row + 32 : 64 * row + 64] = y.to_bytes(32, "big")
    return np.frombuffer(bytes(affine), dtype=np.uint8).reshape(count, 64), raw


def _derive_range(tag: str, start: int, stop: int, processes: int) -> tuple[np.ndarray, np.ndarray]:
    """Derive in `processes` forked workers when the range is large and forking is safe.

    Forking is only safe while this process runs a single thread (a lock held by another
    thread would stay locked in the child); otherwise, and for small ranges, derive inline.
    """
    if stop - start < _PARALLEL_MIN or processes <= 1 or threading.active_count() > 1:
        return _derive_fast(tag, b"G", start, stop)
    step = -(-(stop - start) // processes)
    bounds = [(s, min(s + step, stop)) for s in range(start, stop, step)]
    with ProcessPoolExecutor(max_workers=len(bounds), mp_context=get_context("fork")) as pool:
        parts = list(pool.map(_derive_fast, [tag] * len(bounds), [b"G"] * len(bounds), *zip(*bounds, strict=True)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@dataclass(frozen=True)
class Generators:
    """The first d generators of a tag: affine coordinates and mcl's internal form."""

    tag: str
    affine: np.ndarray  # (d, 64) uint8: x then y, 32 bytes big-endian each (EIP-196 layout)
    h: Point
    raw: np.ndarray = field(repr=False)  # (d, 12) uint64, mcl Montgomery Jacobian points

    @property
    def d(self) -> int:
        return int(self.affine.shape[0])

    def point(self, index: int) -> Point:
        row = self.affine[index].tobytes()
        return (int.from_bytes(row[:32], "big"), int.from_bytes(row[32:], "big"))

    def points(self) -> list[Point]:
        """All G_j as int pairs (O(d) Python objects: for the auditor's path)."""
        data = self.affine.tobytes()
        return [
            (int.from_bytes(data[i : i + 32], "big"), int.from_bytes(data[i + 32 : i + 64], "big"))
            for i in range(0, len(data), 64)
        ]

    def prefix(self, d: int) -> Generators:
        if d > self.d:
            raise ValueError(f"only {self.d} generators loaded, {d} asked")
        return Generators(self.tag, self.affine[:d], self.h, self.raw[:d])

    @property
    def h_raw(self) -> np.ndarray:
        return mcl.g1_from_affine(self.h)


_memory: dict[tuple[str, str], Generators] = {}


def _key(tag: str) -> str:
    return hashlib.sha256(_tag_bytes(tag)).hexdigest()[:16]


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _read_cache(directory: Path, tag: str) -> Generators | None:
    """The cached generators if the files agree with each other and with the tag, else None."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        if meta.get("spec") != SPEC_VERSION or meta.get("tag") != tag:
            return None
        count = int(meta["count"])
        affine = np.load(directory / "affine.npy", allow_pickle=False)[:count]
        raw = np.load(directory / "mcl.npy", allow_pickle=False)[:count]
    except (OSError, ValueError, KeyError):
        return None
    if affine.shape != (count, 64) or raw.shape != (count, mcl.G1_WORDS):
        return None
    if hashlib.sha256(affine.tobytes()).hexdigest() != meta.get("affine_sha256"):
        return None
    h = (int(meta["h"][0], 16), int(meta["h"][1], 16))
    gens = Generators(tag, np.ascontiguousarray(affine), h, np.ascontiguousarray(raw))
    probe = sorted({0, count // 2, count - 1}) if count else []
    if any(mcl.g1_to_affine(gens.raw[i]) != gens.point(i) for i in probe):
        return None
    return gens


def _write_cache(directory: Path, gens: Generators) -> None:
    atomic_write(directory / "affine.npy", _npy_bytes(gens.affine))
    atomic_write(directory / "mcl.npy", _npy_bytes(gens.raw))
    meta = {
        "spec": SPEC_VERSION,
        "curve": "bn254",
        "tag": gens.tag,
        "count": gens.d,
        "h": [hex(gens.h[0]), hex(gens.h[1])],
        "affine_sha256": hashlib.sha256(gens.affine.tobytes()).hexdigest(),
    }
    atomic_write(directory / "meta.json", json.dumps(meta, indent=1).encode())


def load_generators(
    d: int,
    tag: str = DEFAULT_TAG,
    cache: str | os.PathLike[str] | None = None,
    processes: int | None = None,
) -> Generators:
    """G_1..G_d and H for `tag`, from memory, else the disk cache, deriving only what is missing."""
    if d < 0:
        raise ValueError("d must be non-negative")
    directory = cache_dir(cache) / "generators" / _key(tag)
    memo_key = (tag, str(directory))
    held = _memory.get(memo_key)
    if held is not None and held.d >= d:
        return held.prefix(d)
    with _locked(directory):
        gens = _read_cache(directory, tag)
        if gens is None:
            h_affine, _ = _derive_fast(tag, b"H", 0, 1)
            row = h_affine[0].tobytes()
            h = (int.from_bytes(row[:32], "big"), int.from_bytes(row[32:], "big"))
            gens = Generators(tag, np.zeros((0, 64), np.uint8), h, np.zeros((0, mcl.G1_WORDS), np.uint64))
        if gens.d < d:
            workers = processes if processes is not None else len(os.sched_getaffinity(0))
            affine, raw = _derive_range(tag, gens.d, d, workers)
            gens = Generators(tag, np.concatenate([gens.affine, affine]), gens.h, np.concatenate([gens.raw, raw]))
            _write_cache(directory, gens)
    _memory[memo_key] = gens
    return gens.prefix(d)


def forget_in_memory() -> None:
    """Drop the per-process copies (tests use it to prove the disk cache is reused)."""
    _memory.clear()
