// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../../interfaces/IRoundVerifier.sol";
import {IRulesGroth16Verifier} from "./IRulesGroth16Verifier.sol";

/// @title Both proof layers of a fedmarket round, for any rule version
/// @notice Accepts a round only if (1) the Pedersen layer accepts the model commitment as sum_i w_i C_i and (2) the
///         Groth16 proof verifies against one public input that each rule version derives from the round's data.
/// @dev `proof` starts with the eight Groth16 proof words a0 a1 b00 b01 b10 b11 c0 c1; the words after them are
///      the rule version's own (a digest, a link evaluation, ...). The single public input is
///      sha256(uint32be(w_1) .. uint32be(w_n) || extra words) >> 3, recomputed with the sha256 precompile, so the
///      Groth16 verifier pays for one public input only (about 6.2k gas each otherwise). The Groth16 key comes from
///      a trusted setup: a single-party setup is unsafe for real money (zk/CEREMONY.md).
abstract contract Groth16RoundVerifierBase is IRoundVerifier {
    /// @notice Order r of BN254's scalar field.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice Layer 1: the Pedersen aggregation check.
    IRoundVerifier public immutable pedersen;
    /// @notice Layer 2: the Groth16 verifier generated from the task's verifying key.
    IRulesGroth16Verifier public immutable rules;

    /// @notice `proof` does not have the length this rule version expects.
    error BadProofLength(uint256 length);
    /// @notice Weight `index` does not fit the 32 bits the circuit hashes.
    error WeightTooLarge(uint256 index, uint256 weight);
    /// @notice A word hashed into the public input is not a canonical element of the scalar field.
    error NotInField(uint256 value);
    /// @notice A verifier address is zero.
    error ZeroAddress();

    /// @param pedersen_ the layer-1 verifier (PedersenAggregationVerifier)
    /// @param rules_ the layer-2 Groth16 verifier for this task's circuit (n owners, d parameters)
    constructor(IRoundVerifier pedersen_, IRulesGroth16Verifier rules_) {
        if (address(pedersen_) == address(0) || address(rules_) == address(0)) revert ZeroAddress();
        pedersen = pedersen_;
        rules = rules_;
    }

    /// @inheritdoc IRoundVerifier
    function verifyRound(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) external view returns (bool) {
        if (proof.length != _proofBytes()) revert BadProofLength(proof.length);
        uint256 h = _publicInputOf(commitments, weights, modelCommitment, proof);
        if (!pedersen.verifyRound(commitments, weights, modelCommitment, "")) return false;
        uint256[8] memory p = abi.decode(proof[0:256], (uint256[8]));
        return rules.verifyProof([p[0], p[1]], [[p[2], p[3]], [p[4], p[5]]], [p[6], p[7]], [h]);
    }

    /// @dev The exact length of `proof` for this rule version.
    function _proofBytes() internal pure virtual returns (uint256);

    /// @dev The circuit's public input, from the round's data and the words after the Groth16 proof.
    function _publicInputOf(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) internal pure virtual returns (uint256);

    /// @dev sha256(uint32be(weights[i])... || words...) >> 3: 253 bits, below r. Every word must be below r.
    function _hashPublic(uint256[] calldata weights, uint256[] memory words) internal pure returns (uint256) {
        uint256 n = weights.length;
        bytes memory message = new bytes(4 * n + 32 * words.length);
        for (uint256 i; i < n; ++i) {
            uint256 w = weights[i];
            if (w > type(uint32).max) revert WeightTooLarge(i, w);
            bytes4 word = bytes4(uint32(w));
            assembly ("memory-safe") {
                mstore(add(add(message, 0x20), mul(i, 4)), word)
            }
        }
        for (uint256 k; k < words.length; ++k) {
            uint256 value = words[k];
            if (value >= SNARK_SCALAR_FIELD) revert NotInField(value);
            assembly ("memory-safe") {
                mstore(add(add(add(message, 0x20), mul(n, 4)), mul(k, 0x20)), value)
            }
        }
        return uint256(sha256(message)) >> 3;
    }
}
