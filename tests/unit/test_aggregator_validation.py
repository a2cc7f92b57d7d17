"""Validation turns every bad update into a recorded Rejection and lets the round go on."""

from __future__ import annotations

import numpy as np

from aggregator.validation import Rejection, ValidUpdate, validate_float_stack, validate_round, validate_update
from marketplace.models import ModelSpec, expected_shapes
from marketplace.updates.envelope import UpdateHeader, pack_update
from marketplace.updates.limits import max_update_bytes
from marketplace.updates.quantize import quantize

SPEC = ModelSpec("logreg", 4, 3)
SHAPES = expected_shapes(SPEC)
SENDER = "0x" + "ab" * 20
SCALE_BITS, BOUND = 16, 2**24


def _payload(values: dict[str, np.ndarray], sender: str = SENDER) -> bytes:
    header = UpdateHeader(task_id=1, round=0, num_samples=10, scale_bits=SCALE_BITS, sender=sender)
    return pack_update(header, quantize(values, SCALE_BITS, BOUND))


def _good(scale: float = 0.01) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: (scale * rng.normal(size=shape)).astype(np.float32) for name, shape in SHAPES.items()}


def _check(data: bytes, sender: str = SENDER, **kwargs) -> ValidUpdate | Rejection:
    options = {
        "expected_shapes": SHAPES,
        "scale_bits": SCALE_BITS,
        "bound": BOUND,
        "max_bytes": max_update_bytes(SHAPES),
        "max_norm": 1.0,
    }
    options.update(kwargs)
    return validate_update(sender, data, **options)


def test_good_update_is_flattened_in_canonical_order() -> None:
    outcome = _check(_payload(_good()))
    assert isinstance(outcome, ValidUpdate)
    assert outcome.vector.dtype == np.int64 and outcome.vector.size == 4 * 3 + 3


def test_wrong_shape_garbage_oversize_sender_and_norm_are_rejected_with_reasons() -> None:
    wrong = _good()
    wrong["layers.0.weight"] = np.zeros((2, 4), dtype=np.float32)
    cases = {
        "shape": _check(_payload(wrong)),
        "garbage": _check(b"\x00not an update"),
        "size": _check(_payload(_good()), max_bytes=10),
        "sender": _check(_payload(_good(), sender="0x" + "cd" * 20)),
        "norm": _check(_payload(_good(scale=10.0))),
        "type": _check("text"),  # type: ignore[arg-type]
    }
    for label, outcome in cases.items():
        assert isinstance(outcome, Rejection), label
        assert outcome.sender == SENDER and outcome.reason, label
    assert "shape" in cases["shape"].reason
    assert "bytes" in cases["size"].reason
    assert "norm" in cases["norm"].reason


def test_round_records_rejections_and_duplicates_but_keeps_the_rest() -> None:
    other = "0x" + "12" * 20
    result = validate_round(
        [
            (SENDER, _payload(_good())),
            (SENDER, _payload(_good())),
            (other, b"junk"),
            ("0x" + "34" * 20, _payload(_good(), sender="0x" + "34" * 20)),
        ],
        expected_shapes=SHAPES,
        scale_bits=SCALE_BITS,
        bound=BOUND,
        max_bytes=max_update_bytes(SHAPES),
    )
    assert result.updates.shape == (2, 15)
    assert result.rejections[0].reason == "duplicate submission for this round"
    assert result.rejections[1].sender == other


def test_float_stack_rejects_nan_inf_and_huge_rows() -> None:
    updates = np.ones((4, 10), dtype=np.float32)
    updates[1, 3] = np.nan
    updates[2, 0] = np.inf
    updates[3] *= 100
    outcome = validate_float_stack(updates, ["a", "b", "c", "d"], dimension=10, max_norm=10.0)
    assert outcome.valid.tolist() == [True, False, False, False]
    reasons = {r.sender: r.reason for r in outcome.rejections}
    assert "non-finite" in reasons["b"] and "non-finite" in reasons["c"] and "norm" in reasons["d"]
