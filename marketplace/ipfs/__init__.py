"""Content-addressed storage for specs, updates and models: a Kubo RPC client and a local js-ipfs node."""

from marketplace.ipfs.client import IpfsClient, normalize_cid
from marketplace.ipfs.node import LocalIpfsNode

__all__ = ["IpfsClient", "LocalIpfsNode", "normalize_cid"]
