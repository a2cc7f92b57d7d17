// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

/// @title Round verifier hook
/// @notice What the Marketplace asks before it accepts a round's aggregation. The ZK layer implements it:
///         layer 1 checks modelCommitment == sum_i weights[i] * commitments[i] with the BN254 precompiles,
///         layer 2 checks a Groth16 proof of the task's rules carried in `proof`.
interface IRoundVerifier {
    /// Checks a round's aggregation: commitments[i] is data owner i's Pedersen commitment (BN254 G1 point, x,y),
    /// weights[i] its integer aggregation weight (0 = left out), modelCommitment the commitment to the new aggregate,
    /// proof: extra proof bytes (Groth16 for the rules, may be empty for layer 1 only). Returns true if valid.
    function verifyRound(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) external view returns (bool);
}
