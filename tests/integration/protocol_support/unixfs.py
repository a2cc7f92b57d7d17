"""UnixFS blocks built by hand from the spec, for checking CIDs and for content a node can only half serve."""

from __future__ import annotations

from multiformats import CID, multihash

CHUNK_SIZE = 262144  # the default fixed-size chunker of Kubo and js-ipfs


def raw_leaf_cid(data: bytes) -> str:
    """CIDv1 of content that fits one chunk: the raw block itself, hashed with SHA-256."""
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | 0x80 if value else low)
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: bytes are length-delimited, ints are varints."""
    if isinstance(payload, bytes):
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload
    return _varint(number << 3) + _varint(payload)


def file_root_block(chunks: list[bytes]) -> bytes:
    """The dag-pb root block of a file made of these raw-leaf chunks (one level, ≤174 chunks)."""
    links = b"".join(
        _field(2, _field(1, bytes(CID.decode(raw_leaf_cid(chunk)))) + _field(2, b"") + _field(3, len(chunk)))
        for chunk in chunks
    )
    size = sum(len(chunk) for chunk in chunks)
    unixfs_file = _field(1, 2) + _field(3, size) + b"".join(_field(4, len(chunk)) for chunk in chunks)
    return links + _field(1, unixfs_file)


def balanced_file_cid(data: bytes) -> str:
    """Root CIDv1 of a multi-chunk file per the UnixFS spec (raw leaves, one dag-pb level, ≤174 chunks)."""
    chunks = [data[i : i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE)]
    return str(CID("base32", 1, "dag-pb", multihash.digest(file_root_block(chunks), "sha2-256")))
