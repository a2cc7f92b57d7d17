"""The update wire format: fixed point, safetensors, header, sealed boxes and size limits."""

from marketplace.updates.envelope import (
    UpdateHeader,
    pack_model,
    pack_update,
    unpack_model,
    unpack_update,
)
from marketplace.updates.limits import (
    DEFAULT_MAX_UPDATE_BYTES,
    max_model_bytes,
    max_sealed_update_bytes,
    max_update_bytes,
)
from marketplace.updates.quantize import dequantize, quantize, storage_dtype
from marketplace.updates.sealed import (
    SEAL_OVERHEAD_BYTES,
    generate_keypair,
    key_from_base64,
    key_from_hex,
    key_to_base64,
    key_to_hex,
    open_sealed,
    public_key_from_private,
    seal,
)
from marketplace.updates.tensors import decode_tensors, encode_tensors

__all__ = [
    "DEFAULT_MAX_UPDATE_BYTES",
    "SEAL_OVERHEAD_BYTES",
    "UpdateHeader",
    "decode_tensors",
    "dequantize",
    "encode_tensors",
    "generate_keypair",
    "key_from_base64",
    "key_from_hex",
    "key_to_base64",
    "key_to_hex",
    "max_model_bytes",
    "max_sealed_update_bytes",
    "max_update_bytes",
    "open_sealed",
    "pack_model",
    "pack_update",
    "public_key_from_private",
    "quantize",
    "seal",
    "storage_dtype",
    "unpack_model",
    "unpack_update",
]
