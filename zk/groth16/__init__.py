"""Layer 2 of the round proofs: a Groth16 proof (Groth, EUROCRYPT 2016) that a round's weights,
reputations and removals follow the task's integer RFFL rules (aggregator.fixedpoint).

- zk.groth16.poseidon: circomlib-compatible Poseidon and the chain hash used for commitments
- zk.groth16.rules: circuit shape, witness/hints, the public statement and its one-element hash
- zk.groth16.keys: compile + single-party setup (UNSAFE for real money) or ceremony import, cached
- zk.groth16.prover: prove / verify / proof encoding
- zk.groth16.solidity: verifier export and compilation
- zk.groth16.linked: rule version rffl-v2 — the proven cosine filter (`kept`) and the Poseidon ↔ Pedersen
  link (chain-seeded evaluation in the circuit + a Σ-proof on the Pedersen commitments); zk.auditor_link
  re-checks the Σ-proof with py_ecc
- zk.groth16.projection: prototype for d ≫ 10^4 — the rules on a chain-seeded ±1 projection, linked to the
  full-length Pedersen commitments (zk/SCALING.md)
"""
