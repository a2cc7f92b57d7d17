"""The CID a file must have, computed locally so a download is checked without trusting the node."""

from __future__ import annotations

from multiformats import CID, multihash

from marketplace.ipfs import IpfsClient, normalize_cid

SINGLE_BLOCK_BYTES = 256 * 1024  # default chunker: smaller files are one raw leaf, whose CID is its hash


def local_cid(data: bytes) -> str | None:
    """CIDv1 (raw leaves) of a one-block file; None for files the chunker splits."""
    if len(data) > SINGLE_BLOCK_BYTES:
        return None
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))


def matches_cid(data: bytes, cid: str, ipfs: IpfsClient | None = None) -> tuple[bool, str]:
    """Whether `data` is the content of `cid`, and how that was decided."""
    computed = local_cid(data)
    if computed is not None:
        return computed == normalize_cid(cid), "sha-256 computed locally"
    if ipfs is None:
        return False, "file too large to check without an IPFS node"
    return ipfs.add(data) == normalize_cid(cid), "re-hashed by the IPFS node"
