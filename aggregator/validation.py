"""First gate of every round: turn each decrypted update into a flat integer vector or a
recorded `Rejection(sender, reason)`, never an exception that stops the round.

Parsing (names, shapes, dtype, finite, quantization range, byte size, task and round) is
marketplace.updates.envelope.unpack_update's job; this module adds the per-round checks:
the header's sender matches the submitting address, one update per sender, and a norm
sanity bound (‖Δ‖ ≤ max_norm, checked exactly on the integers). The research path,
`validate_float_stack`, applies the same ideas to an n × d float matrix in one pass: a row
is finite iff its squared norm is finite (NaN and ±inf propagate into Σx²), so no separate
isfinite sweep over the data is needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aggregator.fixedpoint import exact_squared_norms
from aggregator.rules.passes import row_squared_norms
from marketplace.errors import UpdateFormatError
from marketplace.updates.envelope import UpdateHeader, unpack_update


@dataclass(frozen=True)
class Rejection:
    """Why a sender's update was left out of this round (kept in the round's record)."""

    sender: str
    reason: str


@dataclass(frozen=True)
class ValidUpdate:
    sender: str
    header: UpdateHeader
    vector: np.ndarray  # int64, canonical flat order
    num_samples: int


def max_norm_fixed(max_norm: float, scale_bits: int) -> int:
    """The norm bound at update scale, ⌊max_norm·2^scale_bits⌋ (exact for decimal inputs)."""
    return math.floor(max_norm * (1 << scale_bits))


def validate_update(
    sender: str,
    data: bytes,
    *,
    expected_shapes: Mapping[str, tuple[int, ...]],
    scale_bits: int,
    bound: int,
    max_bytes: int,
    max_norm: float | None = None,
    expected_task_id: int | None = None,
    expected_round: int | None = None,
) -> ValidUpdate | Rejection:
    """Decode and check one update; any failure becomes a Rejection with a readable reason."""
    try:
        if not isinstance(data, bytes | bytearray | memoryview):
            return Rejection(sender, f"update payload is {type(data).__name__}, not bytes")
        if len(data) > max_bytes:
            return Rejection(sender, f"update is {len(data)} bytes, above the limit of {max_bytes}")
        header, arrays = unpack_update(
            bytes(data),
            expected_shapes=expected_shapes,
            scale_bits=scale_bits,
            bound=bound,
            max_bytes=max_bytes,
            expected_task_id=expected_task_id,
            expected_round=expected_round,
        )
    except UpdateFormatError as error:
        return Rejection(sender, str(error))
    except Exception as error:  # a hostile payload must never stop the round: record and go on
        return Rejection(sender, f"malformed update ({type(error).__name__}: {error})")
    if header.sender.lower() != sender.lower():
        return Rejection(sender, f"update header names sender {header.sender}, but {sender} submitted it")
    vector = np.concatenate([arrays[name].reshape(-1) for name in expected_shapes]).astype(np.int64)
    if max_norm is not None:
        limit = max_norm_fixed(max_norm, scale_bits)
        squared = exact_squared_norms(vector[None, :])[0]
        if squared > limit * limit:
            norm = math.sqrt(squared) / (1 << scale_bits)
            return Rejection(sender, f"update norm {norm:.6g} exceeds the sanity bound {max_norm:g}")
    return ValidUpdate(sender, header, vector, int(header.num_samples))


@dataclass(frozen=True)
class ValidatedRound:
    senders: list[str]
    updates: np.ndarray  # n × d int64
    num_samples: list[int]
    rejections: list[Rejection]


def validate_round(
    submissions: Iterable[tuple[str, bytes]],
    *,
    expected_shapes: Mapping[str, tuple[int, ...]],
    scale_bits: int,
    bound: int,
    max_bytes: int,
    max_norm: float | None = None,
    expected_task_id: int | None = None,
    expected_round: int | None = None,
) -> ValidatedRound:
    """Validate every submission; a second update from the same sender is rejected."""
    seen: set[str] = set()
    valid: list[ValidUpdate] = []
    rejections: list[Rejection] = []
    dimension = sum(math.prod(shape) for shape in expected_shapes.values())
    for sender, data in submissions:
        key = sender.lower()
        if key in seen:
            rejections.append(Rejection(sender, "duplicate submission for this round"))
            continue
        seen.add(key)
        outcome = validate_update(
            sender,
            data,
            expected_shapes=expected_shapes,
            scale_bits=scale_bits,
            bound=bound,
            max_bytes=max_bytes,
            max_norm=max_norm,
            expected_task_id=expected_task_id,
            expected_round=expected_round,
        )
        if isinstance(outcome, Rejection):
            rejections.append(outcome)
        else:
            valid.append(outcome)
    matrix = np.stack([v.vector for v in valid]) if valid else np.zeros((0, dimension), dtype=np.int64)
    return ValidatedRound([v.sender for v in valid], matrix, [v.num_samples for v in valid], rejections)


@dataclass(frozen=True)
class FloatValidation:
    valid: np.ndarray
    squared_norms: np.ndarray
    rejections: list[Rejection]


# Relative slack on a computed squared norm: float32 partial sums of ≤ 2^18 non-negative terms
# (NORM_BLOCK_COLUMNS) are off by less than 2^18 · 2^-24 = 2^-6 even if summed one by one, so
# a row escapes the max-abs scan only when its norm, rounded up generously, is within max_abs.
_NORM_SLACK = 1.0 + 2.0**-4


def validate_float_stack(
    updates: np.ndarray,
    senders: Sequence[str],
    *,
    dimension: int,
    max_norm: float,
    max_abs: float | None = None,
) -> FloatValidation:
    """Research path: shape/dtype of the matrix, then per row finite, ‖Δ‖ ≤ max_norm and (if
    given) every |x| ≤ max_abs, from one row-sequential pass over the data.

    The pass computes only the squared norms: a row is finite iff Σx² is (NaN and ±inf
    propagate), and max|x| ≤ ‖x‖₂, so the coordinate range is implied for every row whose norm
    is within `max_abs`; only the rare valid row with a larger norm is scanned for its largest
    coordinate. A row whose float32 Σx² overflows although every entry is finite is told apart
    by a scan of that row alone and judged on its float64 norm.
    """
    if updates.ndim != 2 or updates.shape[1] != dimension:
        raise UpdateFormatError(f"update matrix has shape {updates.shape}; expected (n, {dimension})")
    if updates.dtype not in (np.float32, np.float64):
        raise UpdateFormatError(f"update matrix has dtype {updates.dtype}; expected float32 or float64")
    if len(senders) != updates.shape[0]:
        raise ValueError("one sender per update row is required")
    if max_abs is not None and not max_abs >= 0:
        raise ValueError(f"max_abs must be a non-negative number, got {max_abs!r}")
    with np.errstate(over="ignore", invalid="ignore"):
        squared = row_squared_norms(updates)
    finite = np.isfinite(squared)
    valid = finite & (squared <= max_norm * max_norm)
    reasons: dict[int, str] = {}
    for row in np.flatnonzero(~valid):
        if not finite[row]:
            values = updates[row]
            if not np.all(np.isfinite(values)):
                reasons[int(row)] = "non-finite values (NaN or inf) in update"
                continue
            # finite entries whose float32 Σx² overflowed: the row's norm in float64 decides
            exact = values.astype(np.float64)
            squared[row] = float(np.dot(exact, exact))
            if squared[row] <= max_norm * max_norm:
                valid[row] = True
                continue
        reasons[int(row)] = f"update norm {math.sqrt(squared[row]):.6g} exceeds the sanity bound {max_norm:g}"
    if max_abs is not None:
        limit = max_abs * max_abs
        # (below ~1e-12 float32 underflow in x² could hide a value: scan every row then)
        implied = (squared * _NORM_SLACK <= limit) & (max_abs > 1e-12)
        for row in np.flatnonzero(valid & ~implied):
            values = updates[row]
            peak = max(float(values.max()), -float(values.min()))
            if peak > max_abs:
                valid[row] = False
                reasons[int(row)] = f"update has a value of magnitude {peak:.6g}, beyond the bound {max_abs:g}"
    rejections = [Rejection(senders[row], reasons[row]) for row in sorted(reasons)]
    return FloatValidation(valid, squared, rejections)
