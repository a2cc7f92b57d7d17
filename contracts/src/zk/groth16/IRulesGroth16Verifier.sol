// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

/// @title Groth16 verifier with one public input (the shape groth16py and snarkjs export)
/// @notice Implemented by the verifier generated from a task's verifying key (zk/groth16/solidity.py).
interface IRulesGroth16Verifier {
    /// @notice Groth16 pairing check (Groth 2016) with the EIP-197 precompile; G2 words in (c1, c0) order.
    function verifyProof(
        uint256[2] calldata a,
        uint256[2][2] calldata b,
        uint256[2] calldata c,
        uint256[1] calldata input
    ) external view returns (bool);
}
