"""Layer 2 beyond ~10^4 parameters: the rules on a chain-seeded random projection, bound to the Pedersen
commitments (prototype; zk/SCALING.md "Path 1").

After every owner's Pedersen commitment C_i (to the full d-dimensional update u_i) is fixed, a public seed
s_P = keccak256("fedmarket/projection/v1" ‖ abi.encode(C_1..C_n)) mod r defines a matrix P ∈ {−1, 0, +1}^{m×d}
(two bits of SHAKE-256(s_P) per entry: 00 → −1, 11 → +1, else 0; Achlioptas-style sparse signs, PODS 2001).
The aggregator runs the rffl-v2 circuit on y_i = P·u_i (m coordinates, |y| < 2^value_bits with
value_bits = VB + ⌈log2 d⌉), and links the y_i to the C_i with the same Σ-proof as rffl-v2, using z' = Pᵀ·z:
⟨z, P·u_i⟩ = ⟨Pᵀz, u_i⟩. Layer 1 still checks the full d-dimensional aggregate on chain, exactly.

What is proven: the posted weights follow the rules evaluated on the projections (norms, cosines and the filter
on P·u_i), and every y_i is P times the vector inside C_i. What is not: the rules on u_i themselves; by
Johnson–Lindenstrauss (Achlioptas 2001) ‖P u‖² / (m/2) estimates ‖u‖² within 1 ± ε for ε ≈ √(8 ln(1/δ)/m).
So the projected rule is a protocol rule of its own (a task chooses it, and the aggregator's Python must use
it), not an approximation of rffl-v1 that could be disputed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from eth_abi import encode
from eth_utils import keccak

from zk.curve import CURVE_ORDER, Point

DOMAIN = b"fedmarket/projection/v1"
LIMB_BITS = 32
LIMBS = 8  # 8 × 32 bits ≥ 254 bits of a field element


def projection_seed(commitments: Sequence[Point]) -> int:
    """s_P = keccak256(DOMAIN ‖ abi.encode(uint256[2][] C)) mod r: fixed only once every C_i is."""
    data = encode(["uint256[2][]"], [[[int(c[0]), int(c[1])] for c in commitments]])
    return int.from_bytes(keccak(DOMAIN + data), "big") % CURVE_ORDER


def projection_matrix(seed: int, m: int, d: int) -> np.ndarray:
    """P ∈ {−1, 0, +1}^{m×d} (int8) from SHAKE-256(DOMAIN ‖ seed): P(±1) = 1/4 each, E[P²] = 1/2."""
    if m < 1 or d < 1:
        raise ValueError("m and d must be positive")
    raw = hashlib.shake_256(DOMAIN + int(seed).to_bytes(32, "big")).digest((m * d + 3) // 4)
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).reshape(-1, 2)[: m * d]
    code = bits[:, 0].astype(np.int8) * 2 + bits[:, 1].astype(np.int8)  # 0..3
    matrix = np.zeros(m * d, dtype=np.int8)
    matrix[code == 0] = -1
    matrix[code == 3] = 1
    return matrix.reshape(m, d)


def project(updates: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """y_i = P·u_i exactly (int64: |y| ≤ d·max|u| must stay below 2^62)."""
    u = np.atleast_2d(np.asarray(updates)).astype(np.int64)
    if int(np.abs(u).max(initial=0)) * matrix.shape[1] >= 1 << 62:
        raise ValueError("projection would overflow int64")
    return u @ matrix.T.astype(np.int64)


def projected_value_bits(value_bits: int, d: int) -> int:
    """Bits that bound |y| = |P·u| for |u| < 2^value_bits: value_bits + ⌈log2 d⌉."""
    return value_bits + max(0, (d - 1).bit_length())


def transpose_times(matrix: np.ndarray, z: Sequence[int]) -> list[int]:
    """Pᵀ·z mod r for field elements z (length m), via 32-bit limbs and int64 matrix products (exact: a limb
    sum over m ≤ 2^20 rows stays below 2^52)."""
    m, d = matrix.shape
    if len(z) != m:
        raise ValueError(f"{len(z)} challenges for {m} rows")
    if m >= 1 << 20:
        raise ValueError("too many rows for the limb bound")
    pt = matrix.T.astype(np.int64)
    mask = (1 << LIMB_BITS) - 1
    total = [0] * d
    for limb in range(LIMBS):
        part = np.array([(int(x) >> (LIMB_BITS * limb)) & mask for x in z], dtype=np.int64)
        col = (pt @ part).tolist()
        shift = LIMB_BITS * limb
        total = [acc + (int(c) << shift) for acc, c in zip(total, col, strict=True)]
    return [x % CURVE_ORDER for x in total]
