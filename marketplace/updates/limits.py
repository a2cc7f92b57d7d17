"""Size limits for update and model files, so oversized uploads are refused before parsing."""

from __future__ import annotations

import math
from collections.abc import Mapping

from marketplace.updates.sealed import SEAL_OVERHEAD_BYTES

DEFAULT_MAX_UPDATE_BYTES = 64 * 1024 * 1024  # when no model shapes are known
HEADER_SLACK_BYTES = 16 * 1024  # metadata block and JSON framing of the header
PER_TENSOR_SLACK_BYTES = 256  # one tensor's JSON entry, beyond its name
WIDEST_UPDATE_ITEM_BYTES = 8  # int64 storage; int32 updates are smaller
MODEL_ITEM_BYTES = 4  # float32


def max_update_bytes(spec_shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The largest well-formed plaintext update for these shapes (int64 storage plus header)."""
    return _payload_limit(spec_shapes, WIDEST_UPDATE_ITEM_BYTES)


def max_sealed_update_bytes(spec_shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The largest well-formed sealed update: the plaintext limit plus the box's overhead."""
    return max_update_bytes(spec_shapes) + SEAL_OVERHEAD_BYTES


def max_model_bytes(spec_shapes: Mapping[str, tuple[int, ...]]) -> int:
    """The largest well-formed global model file (float32) for these shapes."""
    return _payload_limit(spec_shapes, MODEL_ITEM_BYTES)


def _payload_limit(spec_shapes: Mapping[str, tuple[int, ...]], item_bytes: int) -> int:
    payload = sum(math.prod(shape) * item_bytes for shape in spec_shapes.values())
    framing = sum(PER_TENSOR_SLACK_BYTES + len(name.encode()) for name in spec_shapes)
    return payload + framing + HEADER_SLACK_BYTES
