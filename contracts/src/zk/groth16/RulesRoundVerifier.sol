// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../../interfaces/IRoundVerifier.sol";
import {IRulesGroth16Verifier} from "./IRulesGroth16Verifier.sol";

/// @title Round verifier combining both proof layers of fedmarket
/// @notice Accepts a round only if (1) the Pedersen layer accepts the model commitment as sum_i w_i C_i and (2) a
///         Groth16 proof shows that the weights follow the task's integer RFFL rules (rule version rffl-v1).
/// @dev `proof` = abi.encode(uint256[8] groth16Proof, uint256 digest): the proof words a0 a1 b00 b01 b10 b11 c0 c1
///      and the Poseidon digest of the round's other public values (commitments, reputations, flags, parameters;
///      zk/groth16/rules.py). The circuit's single public input is sha256(uint32be(w_1) .. uint32be(w_n) ||
///      digest) >> 3, recomputed here with the sha256 precompile, so the verifier pays for one public input only
///      (about 6.2k gas each otherwise). The Groth16 key comes from a trusted setup: a single-party setup is unsafe
///      for real money; production keys come from a multi-party ceremony (zk/CEREMONY.md).
contract RulesRoundVerifier is IRoundVerifier {
    /// @notice Order r of BN254's scalar field.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Bytes of `proof`: eight proof words and the digest.
    uint256 public constant PROOF_BYTES = 9 * 32;

    /// @notice Layer 1: the Pedersen aggregation check.
    IRoundVerifier public immutable pedersen;
    /// @notice Layer 2: the Groth16 verifier generated from the task's verifying key.
    IRulesGroth16Verifier public immutable rules;

    /// @notice `proof` is not PROOF_BYTES long.
    error BadProofLength(uint256 length);
    /// @notice Weight `index` does not fit the 32 bits the circuit hashes.
    error WeightTooLarge(uint256 index, uint256 weight);
    /// @notice The digest is not a canonical element of the scalar field.
    error DigestNotInField(uint256 digest);
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
        if (proof.length != PROOF_BYTES) revert BadProofLength(proof.length);
        (uint256[8] memory p, uint256 digest) = abi.decode(proof, (uint256[8], uint256));
        uint256 h = publicInput(weights, digest);
        if (!pedersen.verifyRound(commitments, weights, modelCommitment, "")) return false;
        return rules.verifyProof([p[0], p[1]], [[p[2], p[3]], [p[4], p[5]]], [p[6], p[7]], [h]);
    }

    /// @notice The circuit's public input: sha256(uint32be(weights[i])... || digest) >> 3 (253 bits, below r).
    function publicInput(uint256[] calldata weights, uint256 digest) public pure returns (uint256) {
        if (digest >= SNARK_SCALAR_FIELD) revert DigestNotInField(digest);
        uint256 n = weights.length;
        bytes memory message = new bytes(4 * n + 32);
        for (uint256 i; i < n; ++i) {
            uint256 w = weights[i];
            if (w > type(uint32).max) revert WeightTooLarge(i, w);
            bytes4 word = bytes4(uint32(w));
            assembly ("memory-safe") {
                mstore(add(add(message, 0x20), mul(i, 4)), word)
            }
        }
        assembly ("memory-safe") {
            mstore(add(add(message, 0x20), mul(n, 4)), digest)
        }
        return uint256(sha256(message)) >> 3;
    }
}
