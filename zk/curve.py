"""BN254 (alt_bn128) G1 parameters and point encoding, as the EVM precompiles define them.

The curve is y² = x³ + 3 over F_p with a prime-order group of order r (cofactor 1), the
curve of EIP-196 (ecAdd 0x06, ecMul 0x07) and EIP-197 (pairing 0x08). A point travels as
two uint256 words (x, y); (0, 0) encodes the point at infinity, exactly as in EIP-196.
The scalar field F_r is also circom's and groth16py's field, so layer 2 proofs speak
about the same numbers as these commitments.
"""

from __future__ import annotations

from typing import TypeAlias

#: Base-field modulus p of BN254 (EIP-196).
FIELD_MODULUS = 21888242871839275222246405745257275088696311157297823662689037894645226208583
#: Group order r of BN254 G1; commitments, weights and blindings live in F_r.
CURVE_ORDER = 21888242871839275222246405745257275088548364400416034343698204186575808495617
#: Curve constant b in y² = x³ + b.
CURVE_B = 3
#: The generator the precompiles use, (1, 2); never used as a Pedersen generator.
G1_GENERATOR = (1, 2)

#: An affine point (x, y) as plain integers; (0, 0) is the point at infinity.
Point: TypeAlias = tuple[int, int]
INFINITY: Point = (0, 0)


def is_on_curve(point: Point) -> bool:
    """True for the encoded point at infinity and for every (x, y) < p with y² = x³ + 3."""
    x, y = point
    if point == INFINITY:
        return True
    if not (0 <= x < FIELD_MODULUS and 0 <= y < FIELD_MODULUS):
        return False
    return (y * y - x * x * x - CURVE_B) % FIELD_MODULUS == 0


def check_point(point: Point, what: str = "point") -> Point:
    """Return `point` as an int pair, or raise ValueError if it is not an encoded G1 point."""
    x, y = int(point[0]), int(point[1])
    if not is_on_curve((x, y)):
        raise ValueError(f"{what} ({x:#x}, {y:#x}) is not on BN254 G1")
    return (x, y)


def negate(point: Point) -> Point:
    """−P; infinity stays infinity."""
    x, y = point
    return INFINITY if point == INFINITY else (x, (FIELD_MODULUS - y) % FIELD_MODULUS)


def to_words(point: Point) -> list[int]:
    """The uint256[2] calldata form of a point."""
    return [int(point[0]), int(point[1])]


def to_bytes(point: Point) -> bytes:
    """64 bytes, x then y, big-endian: the EIP-196 wire format."""
    return int(point[0]).to_bytes(32, "big") + int(point[1]).to_bytes(32, "big")


def from_bytes(data: bytes) -> Point:
    """Inverse of `to_bytes`; refuses anything that is not 64 bytes of an on-curve point."""
    if len(data) != 64:
        raise ValueError(f"an encoded G1 point is 64 bytes, got {len(data)}")
    return check_point((int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big")))
