"""Commitments and proofs that let the chain and auditors check a round without trusting anyone.

Layer 1 (aggregation correctness, any model size, no trusted setup), see DESIGN.md §5:
- zk.field: signed fixed-point integers ↔ F_r, unambiguous within a declared bound
- zk.curve: BN254 (alt_bn128) G1 constants and the EIP-196 point encoding
- zk.generators: hash-to-curve Pedersen generators from a public tag, cached on disk
- zk.pedersen: commit / aggregate_commitment / open_check (fast path: mcl via zk.mcl)
- zk.auditor: the independent verifier (py_ecc)
- zk.onchain: the deployed PedersenAggregationVerifier contract
zk.commitments holds the SHA-256 hash commitments of update files.
"""
