// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../../interfaces/IRoundVerifier.sol";
import {IRulesGroth16Verifier} from "./IRulesGroth16Verifier.sol";

/// @title Round verifier for rule version rffl-v2: both proof layers plus the Poseidon <-> Pedersen link
/// @notice Accepts a round only if (1) the Pedersen layer accepts the model commitment as sum_i w_i C_i and (2) a
///         Groth16 proof shows that the weights follow the task's integer RFFL rules AND that the updates the rules
///         ran on evaluate to `t` at a challenge `seed` this contract derives from the owners' Pedersen commitments,
///         the model commitment and the statement digest (so the seed is fixed only after every commitment is).
///         The matching Pedersen-side evaluation proof (a Sigma-proof over sum_i e_i C_i, d field elements) is
///         published with the round and checked off chain by auditors (zk/groth16/linked.py): its check is a
///         d-point multi-scalar multiplication, far beyond a block's gas for useful d.
/// @dev `proof` = abi.encode(uint256[8] groth16Proof, uint256 digest, uint256 t). The circuit's single public input
///      is sha256(uint32be(w_1) .. uint32be(w_n) || digest || seed || t) >> 3 with
///      seed = uint256(keccak256(abi.encode(commitments, modelCommitment, digest))) mod r.
///      The Groth16 key comes from a trusted setup: a single-party setup is unsafe for real money (zk/CEREMONY.md).
contract LinkedRulesRoundVerifier is IRoundVerifier {
    /// @notice Order r of BN254's scalar field.
    uint256 public constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @notice Bytes of `proof`: eight proof words, the digest and the link evaluation t.
    uint256 public constant PROOF_BYTES = 10 * 32;

    /// @notice Layer 1: the Pedersen aggregation check.
    IRoundVerifier public immutable pedersen;
    /// @notice Layer 2: the Groth16 verifier generated from the task's rffl-v2 verifying key.
    IRulesGroth16Verifier public immutable rules;

    /// @notice `proof` is not PROOF_BYTES long.
    error BadProofLength(uint256 length);
    /// @notice Weight `index` does not fit the 32 bits the circuit hashes.
    error WeightTooLarge(uint256 index, uint256 weight);
    /// @notice A word hashed into the public input is not a canonical element of the scalar field.
    error NotInField(uint256 value);
    /// @notice A verifier address is zero.
    error ZeroAddress();

    /// @param pedersen_ the layer-1 verifier (PedersenAggregationVerifier)
    /// @param rules_ the layer-2 Groth16 verifier for this task's rffl-v2 circuit (n owners, d parameters)
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
        uint256 h = _publicInputOf(commitments, weights, modelCommitment, proof);
        if (!pedersen.verifyRound(commitments, weights, modelCommitment, "")) return false;
        return _verifyGroth16(proof, h);
    }

    /// @notice The link challenge: keccak256 over every Pedersen commitment, the model commitment and the digest, mod r.
    function linkSeed(
        uint256[2][] calldata commitments,
        uint256[2] calldata modelCommitment,
        uint256 digest
    ) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(commitments, modelCommitment, digest))) % SNARK_SCALAR_FIELD;
    }

    /// @dev Reads digest and t from `proof`, derives the seed and hashes the public input.
    function _publicInputOf(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) private pure returns (uint256) {
        uint256 digest = uint256(bytes32(proof[256:288]));
        uint256 t = uint256(bytes32(proof[288:320]));
        return publicInput(weights, digest, linkSeed(commitments, modelCommitment, digest), t);
    }

    /// @dev The Groth16 pairing check on the first eight words of `proof`.
    function _verifyGroth16(bytes calldata proof, uint256 h) private view returns (bool) {
        uint256[8] memory p = abi.decode(proof[0:256], (uint256[8]));
        return rules.verifyProof([p[0], p[1]], [[p[2], p[3]], [p[4], p[5]]], [p[6], p[7]], [h]);
    }

    /// @notice The circuit's public input: sha256(uint32be(weights[i])... || digest || seed || t) >> 3.
    function publicInput(
        uint256[] calldata weights,
        uint256 digest,
        uint256 seed,
        uint256 t
    ) public pure returns (uint256) {
        if (digest >= SNARK_SCALAR_FIELD) revert NotInField(digest);
        if (seed >= SNARK_SCALAR_FIELD) revert NotInField(seed);
        if (t >= SNARK_SCALAR_FIELD) revert NotInField(t);
        uint256 n = weights.length;
        bytes memory message = new bytes(4 * n + 96);
        for (uint256 i; i < n; ++i) {
            uint256 w = weights[i];
            if (w > type(uint32).max) revert WeightTooLarge(i, w);
            bytes4 word = bytes4(uint32(w));
            assembly ("memory-safe") {
                mstore(add(add(message, 0x20), mul(i, 4)), word)
            }
        }
        assembly ("memory-safe") {
            let tail := add(add(message, 0x20), mul(n, 4))
            mstore(tail, digest)
            mstore(add(tail, 0x20), seed)
            mstore(add(tail, 0x40), t)
        }
        return uint256(sha256(message)) >> 3;
    }
}
