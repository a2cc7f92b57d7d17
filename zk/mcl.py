"""Fast BN254 G1 arithmetic through the C API of mcl (the `mclbn256` wheel), via ctypes.

Why this detour: the wheel's Python API sets up mcl's *other* 254-bit BN curve
(y² = x³ + 2), not Ethereum's alt_bn128. Its bundled shared library, initialised with curve
id MCL_BN_SNARK1 (= 4), is exactly the EIP-196 curve, and its multi-scalar multiplication
(Pippenger with GLV) commits to 2^20 small integers in about a second. The library ships
hex-encoded inside the wheel's Python module; we extract it once into the cache directory
and load our own copy, never importing `mclbn256` itself, so its global curve setting and
ours cannot interfere. `load()` checks 2·(1, 2) against the value the ecMul precompile
returns before anything else runs.

Representation: a G1 point is 12 little-endian uint64 words (X, Y, Z in Montgomery form,
4 words each); an F_r scalar is 4 words in Montgomery form (a·2^256 mod r). Arrays of
points/scalars are numpy arrays of shape (n, 12) / (n, 4), so no Python loop touches the
O(d) data on the commitment path.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import re
import threading
from pathlib import Path

import numpy as np

from zk.cache import atomic_write, cache_dir
from zk.curve import CURVE_ORDER, FIELD_MODULUS, INFINITY, Point

MCL_BN_SNARK1 = 4  # mcl's curve id for Ethereum's alt_bn128
_COMPILED_TIME_VAR = 4 + 4 * 10  # MCLBN_FP_UNIT_SIZE + 10 * MCLBN_FR_UNIT_SIZE, as bn.h defines it
G1_WORDS, FR_WORDS, FP_WORDS = 12, 4, 4
_G1_BYTES = 8 * G1_WORDS
_TWO_G = (  # 2·(1, 2) on alt_bn128, as returned by the ecMul precompile (EIP-196)
    1368015179489954701390400359078579693043519447331113978918064868415326638035,
    9918110051302171585080402603319702774565515993150576347155970296011118125764,
)
#: Points per MSM call: mcl's Pippenger keeps per-point tables on the thread stack (~40 B/point).
MSM_CHUNK = 1 << 16
#: Below this many points the MSM runs on the calling thread (stack use well under 1 MB).
INLINE_MAX = 4096
_WORKER_STACK = 32 << 20
_HALF_P = (FIELD_MODULUS - 1) // 2

G1 = ctypes.c_uint64 * G1_WORDS
Fr = ctypes.c_uint64 * FR_WORDS
Fp = ctypes.c_uint64 * FP_WORDS

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


class McLUnavailableError(RuntimeError):
    """The mcl shared library could not be extracted, loaded or initialised on alt_bn128."""


def _blob_names() -> dict[str, str]:
    return {"mclbn256_bs": "libmclbn256.so", "mcl_bs": "lib/libmcl.so"}


def _extract(target: Path) -> None:
    spec = importlib.util.find_spec("mclbn256")
    if spec is None or not spec.submodule_search_locations:
        raise McLUnavailableError("the `mclbn256` package is not installed (pip install mclbn256)")
    source = Path(next(iter(spec.submodule_search_locations))) / "mclbn256.py"
    text = source.read_text()
    for variable, filename in _blob_names().items():
        match = re.search(rf"{variable} = bytes\.fromhex\('([0-9a-f]+)'\)", text)
        if match is None:
            raise McLUnavailableError(f"no embedded library `{variable}` in {source}")
        atomic_write(target / filename, bytes.fromhex(match.group(1)))


def _library_dir() -> Path:
    version = importlib.metadata.version("mclbn256")
    return cache_dir() / "mcl" / f"mclbn256-{version}"


def _declare(lib: ctypes.CDLL) -> None:
    vp, size, i64 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64
    signatures: dict[str, tuple[list[type], type | None]] = {
        "mclBn_init": ([ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "mclBnG1_setStr": ([vp, ctypes.c_char_p, size, ctypes.c_int], ctypes.c_int),
        "mclBnG1_getStr": ([ctypes.c_char_p, size, vp, ctypes.c_int], size),
        "mclBnG1_add": ([vp, vp, vp], None),
        "mclBnG1_sub": ([vp, vp, vp], None),
        "mclBnG1_neg": ([vp, vp], None),
        "mclBnG1_mul": ([vp, vp, vp], None),
        "mclBnG1_mulVec": ([vp, vp, vp, size], None),
        "mclBnG1_normalize": ([vp, vp], None),
        "mclBnG1_isZero": ([vp], ctypes.c_int),
        "mclBnG1_clear": ([vp], None),
        "mclBnFr_setLittleEndianMod": ([vp, vp, size], ctypes.c_int),
        "mclBnFr_setInt": ([vp, i64], None),
        "mclBnFp_setLittleEndianMod": ([vp, vp, size], ctypes.c_int),
        "mclBnFp_getLittleEndian": ([vp, size, vp], size),
        "mclBnFp_setInt": ([vp, i64], None),
        "mclBnFp_sqr": ([vp, vp], None),
        "mclBnFp_mul": ([vp, vp, vp], None),
        "mclBnFp_add": ([vp, vp, vp], None),
        "mclBnFp_neg": ([vp, vp], None),
        "mclBnFp_squareRoot": ([vp, vp], ctypes.c_int),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def load() -> ctypes.CDLL:
    """The initialised library (extracted and checked on first use; thread-safe)."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        directory = _library_dir()
        main = directory / "libmclbn256.so"
        if not (main.exists() and (directory / "lib" / "libmcl.so").exists()):
            _extract(directory)
        try:
            lib = ctypes.CDLL(str(main), mode=ctypes.RTLD_LOCAL)
        except OSError as exc:
            raise McLUnavailableError(f"cannot load {main}: {exc}") from exc
        _declare(lib)
        if lib.mclBn_init(MCL_BN_SNARK1, _COMPILED_TIME_VAR) != 0:
            raise McLUnavailableError("mclBn_init(MCL_BN_SNARK1) failed")
        _lib = lib
        doubled = _g1_to_affine_unchecked(g1_add(g1_from_affine((1, 2)), g1_from_affine((1, 2))))
        if doubled != _TWO_G:
            _lib = None
            raise McLUnavailableError("mcl is not on alt_bn128: 2·(1, 2) differs from the EIP-196 value")
        return lib


def _ptr(array: np.ndarray, offset_bytes: int = 0) -> int:
    """The address of `array`'s data. The caller must hold a reference to `array` until the C call returns:
    ctypes releases the GIL, so a temporary freed after this returns can be reused by another thread mid-call."""
    return int(array.ctypes.data) + offset_bytes


# ---------------------------------------------------------------- points


def g1_from_affine(point: Point) -> np.ndarray:
    """One point as 12 words; mcl refuses (ValueError) anything not on the curve."""
    lib = load()
    out = np.zeros(G1_WORDS, dtype=np.uint64)
    text = b"0" if tuple(point) == INFINITY else f"1 {int(point[0])} {int(point[1])}".encode()
    if lib.mclBnG1_setStr(_ptr(out), text, len(text), 10) != 0:
        raise ValueError(f"({point[0]}, {point[1]}) is not a BN254 G1 point")
    return out


def _g1_to_affine_unchecked(raw: np.ndarray) -> Point:
    buffer = ctypes.create_string_buffer(256)
    normal = np.zeros(G1_WORDS, dtype=np.uint64)
    assert _lib is not None
    _lib.mclBnG1_normalize(_ptr(normal), _ptr(raw))
    _lib.mclBnG1_getStr(buffer, len(buffer), _ptr(normal), 10)
    parts = buffer.value.split()
    if parts == [b"0"]:
        return INFINITY
    return (int(parts[1]), int(parts[2]))


def g1_to_affine(raw: np.ndarray) -> Point:
    """Affine (x, y) of a point, (0, 0) for infinity."""
    load()
    return _g1_to_affine_unchecked(raw)


def g1_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(G1_WORDS, dtype=np.uint64)
    load().mclBnG1_add(_ptr(out), _ptr(a), _ptr(b))
    return out


def g1_sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(G1_WORDS, dtype=np.uint64)
    load().mclBnG1_sub(_ptr(out), _ptr(a), _ptr(b))
    return out


def g1_mul(point: np.ndarray, scalar: int) -> np.ndarray:
    out = np.zeros(G1_WORDS, dtype=np.uint64)
    factor = fr_from_int(scalar)  # named: its memory must outlive the call (see _ptr)
    load().mclBnG1_mul(_ptr(out), _ptr(point), _ptr(factor))
    return out


def g1_zero() -> np.ndarray:
    out = np.zeros(G1_WORDS, dtype=np.uint64)
    load().mclBnG1_clear(_ptr(out))
    return out


# ---------------------------------------------------------------- scalars


def fr_from_int(value: int) -> np.ndarray:
    """value mod r in mcl's Montgomery form."""
    out = np.zeros(FR_WORDS, dtype=np.uint64)
    data = (int(value) % CURVE_ORDER).to_bytes(32, "little")
    load().mclBnFr_setLittleEndianMod(_ptr(out), data, 32)
    return out


def fr_array_from_ints(values: list[int]) -> np.ndarray:
    """Many Python ints (any size, reduced mod r) in Montgomery form; a Python loop, for small n."""
    lib = load()
    out = np.zeros((len(values), FR_WORDS), dtype=np.uint64)
    base = _ptr(out)
    for i, value in enumerate(values):
        lib.mclBnFr_setLittleEndianMod(base + 32 * i, (int(value) % CURVE_ORDER).to_bytes(32, "little"), 32)
    return out


class _MontgomeryTables:
    """T_k[b] = b·2^(16k)·2^256 mod r as eight 32-bit limbs, so a·2^256 mod r is a sum of lookups."""

    def __init__(self) -> None:
        self._tables: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def table(self, k: int) -> np.ndarray:
        with self._lock:
            if k not in self._tables:
                step = (1 << (16 * k + 256)) % CURVE_ORDER
                data = b"".join(((b * step) % CURVE_ORDER).to_bytes(32, "little") for b in range(1 << 16))
                limbs = np.frombuffer(data, dtype="<u4").reshape(1 << 16, 8).T
                self._tables[k] = np.ascontiguousarray(limbs, dtype=np.uint64)
            return self._tables[k]

    def packed0(self) -> np.ndarray:
        """T_0 as (2^16, 4) uint64 words, mcl's F_r layout, for single-gather conversion."""
        with self._lock:
            packed = self._tables.get(-1)
        if packed is None:
            limbs = self.table(0)
            packed = np.ascontiguousarray((limbs[0::2] | (limbs[1::2] << np.uint64(32))).T)
            with self._lock:
                self._tables[-1] = packed
        return packed


_TABLES = _MontgomeryTables()
_MASK32 = np.uint64(0xFFFFFFFF)


def _limbs32(value: int) -> np.ndarray:
    return np.frombuffer(value.to_bytes(32, "little"), dtype="<u4").astype(np.int64)


_R_MULTIPLES = [_limbs32(2 * CURVE_ORDER), _limbs32(CURVE_ORDER)]


def fr_array_from_small(magnitudes: np.ndarray) -> np.ndarray:
    """Montgomery forms of non-negative int64 values (< 2^63), fully vectorised.

    a = Σ_k a_k·2^(16k) with 16-bit a_k, so a·2^256 ≡ Σ_k T_k[a_k] (mod r): at most four
    table lookups, a carry pass and two conditional subtractions of 2r and r.
    """
    a = np.ascontiguousarray(magnitudes, dtype=np.uint64).reshape(-1)
    n = a.size
    out = np.zeros((n, FR_WORDS), dtype=np.uint64)
    if n == 0:
        return out
    top = int(a.max())
    if top >= 1 << 63:
        raise ValueError("fr_array_from_small takes values below 2^63")
    chunks = max(1, (top.bit_length() + 15) // 16)
    if chunks == 1:  # one row lookup, already reduced: the common case of ≤16-bit quantization
        return _TABLES.packed0()[a.astype(np.intp)]
    acc = np.zeros((8, n), dtype=np.uint64)
    for k in range(chunks):
        digits = ((a >> np.uint64(16 * k)) & np.uint64(0xFFFF)).astype(np.intp)
        acc += _TABLES.table(k)[:, digits]
    for i in range(7):  # carries: every limb is < 4·2^32 here
        acc[i + 1] += acc[i] >> np.uint64(32)
        acc[i] &= _MASK32
    signed = acc.astype(np.int64)  # < 4r < 2^256: fits, limbs < 2^32
    for modulus in _R_MULTIPLES[-1:] if chunks == 2 else _R_MULTIPLES:  # acc < 4r → < 2r → < r
        diff = signed - modulus[:, None]
        for i in range(7):
            borrow = diff[i] >> 32  # 0 or −1 (arithmetic shift)
            diff[i] -= borrow << 32
            diff[i + 1] += borrow
        keep = diff[7] >= 0
        signed = np.where(keep[None, :], diff, signed)
    limbs = signed.astype(np.uint64)
    for w in range(FR_WORDS):
        out[:, w] = limbs[2 * w] | (limbs[2 * w + 1] << np.uint64(32))
    return out


# ---------------------------------------------------------------- multi-scalar multiplication

_P_WORDS = np.frombuffer(FIELD_MODULUS.to_bytes(32, "little"), dtype="<u8").astype(np.uint64)


def negate_rows(points: np.ndarray, rows: np.ndarray) -> None:
    """points[rows] ← −points[rows] in place: Y ↦ p − Y (Montgomery form commutes with negation).

    Only for finite points (Y ≠ 0), which every Pedersen generator is.
    """
    y = points[rows, 4:8]
    borrow = np.zeros(y.shape[0], dtype=bool)
    out = np.empty_like(y)
    for w in range(FP_WORDS):
        p_word = _P_WORDS[w]
        diff = p_word - y[:, w] - borrow.astype(np.uint64)
        borrow = (y[:, w] > p_word) | ((y[:, w] == p_word) & borrow)
        out[:, w] = diff
    points[rows, 4:8] = out


def _msm_chunk(points: np.ndarray, scalars: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    assert _lib is not None
    _lib.mclBnG1_mulVec(_ptr(out), _ptr(points, _G1_BYTES * start), _ptr(scalars, 32 * start), stop - start)


def msm(points: np.ndarray, scalars: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Σ scalars[i]·points[i] (mcl Pippenger), in chunks on big-stack worker threads.

    ctypes releases the GIL during each call, so chunks run in parallel on all cores.
    `points` may be normalised in place by mcl (same point, Z = 1). The workers get a 32 MB
    stack through threading.stack_size, set only while they start (a process-wide setting,
    so a thread another module starts in that instant would get it too; harmless).
    """
    lib = load()
    points = np.ascontiguousarray(points, dtype=np.uint64)
    scalars = np.ascontiguousarray(scalars, dtype=np.uint64)
    n = points.shape[0]
    if scalars.shape[0] != n:
        raise ValueError(f"{n} points but {scalars.shape[0]} scalars")
    if n == 0:
        return g1_zero()
    if n <= INLINE_MAX:  # small enough for any thread's stack
        out = np.zeros(G1_WORDS, dtype=np.uint64)
        _msm_chunk(points, scalars, 0, n, out)
        return out
    workers = max(1, threads or _cpu_count())
    chunk = min(MSM_CHUNK, -(-n // workers))  # every worker gets a share, none exceeds the stack budget
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    partial = np.zeros((len(bounds), G1_WORDS), dtype=np.uint64)
    workers = min(workers, len(bounds))
    queue = list(enumerate(bounds))
    queue_lock = threading.Lock()
    failures: list[BaseException] = []

    def work() -> None:
        while True:
            with queue_lock:
                if not queue or failures:
                    return
                index, (start, stop) = queue.pop()
            try:
                _msm_chunk(points, scalars, start, stop, partial[index])
            except BaseException as exc:  # pragma: no cover - surfaced below
                failures.append(exc)

    previous = threading.stack_size(_WORKER_STACK)
    try:
        pool = [threading.Thread(target=work, name=f"zk-msm-{i}", daemon=True) for i in range(workers)]
        for thread in pool:
            thread.start()
    finally:
        threading.stack_size(previous)
    for thread in pool:
        thread.join()
    if failures:
        raise failures[0]
    total = partial[0].copy()
    for row in partial[1:]:
        lib.mclBnG1_add(_ptr(total), _ptr(total), _ptr(row))
    return total


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ---------------------------------------------------------------- hash to curve support


class CurveLifter:
    """x ↦ (x, y) with y² = x³ + 3 and y ≤ (p−1)/2, written straight into an (n, 12) point array."""

    def __init__(self) -> None:
        self._lib = load()
        self._t = Fp()
        self._three = Fp()
        self._lib.mclBnFp_setInt(ctypes.addressof(self._three), 3)
        self._one = np.zeros(FP_WORDS, dtype=np.uint64)
        self._lib.mclBnFp_setInt(_ptr(self._one), 1)
        self._buffer = ctypes.create_string_buffer(32)

    def lift(self, digest: bytes, out: np.ndarray, row: int) -> int | None:
        """Set x = LE(digest) mod p; if x³ + 3 is a square write the point into out[row], return y."""
        lib, t = self._lib, ctypes.addressof(self._t)
        x_ptr = _ptr(out, _G1_BYTES * row)
        y_ptr = x_ptr + 32
        lib.mclBnFp_setLittleEndianMod(x_ptr, digest, len(digest))
        lib.mclBnFp_sqr(t, x_ptr)
        lib.mclBnFp_mul(t, t, x_ptr)
        lib.mclBnFp_add(t, t, ctypes.addressof(self._three))
        if lib.mclBnFp_squareRoot(y_ptr, t) != 0:
            return None
        size = lib.mclBnFp_getLittleEndian(self._buffer, 32, y_ptr)
        y = int.from_bytes(self._buffer.raw[:size], "little")
        if y > _HALF_P:
            lib.mclBnFp_neg(y_ptr, y_ptr)
            y = FIELD_MODULUS - y
        out[row, 8:12] = self._one
        return y
