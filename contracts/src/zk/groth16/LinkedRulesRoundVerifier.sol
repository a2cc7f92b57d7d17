// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../../interfaces/IRoundVerifier.sol";
import {Groth16RoundVerifierBase} from "./Groth16RoundVerifierBase.sol";
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
contract LinkedRulesRoundVerifier is Groth16RoundVerifierBase {
    /// @notice Bytes of `proof`: eight proof words, the digest and the link evaluation t.
    uint256 public constant PROOF_BYTES = 10 * 32;

    /// @param pedersen_ the layer-1 verifier (PedersenAggregationVerifier)
    /// @param rules_ the layer-2 Groth16 verifier for this task's rffl-v2 circuit (n owners, d parameters)
    constructor(IRoundVerifier pedersen_, IRulesGroth16Verifier rules_) Groth16RoundVerifierBase(pedersen_, rules_) {}

    /// @notice The link challenge: keccak256 over every Pedersen commitment, the model commitment and the digest, mod r.
    function linkSeed(
        uint256[2][] calldata commitments,
        uint256[2] calldata modelCommitment,
        uint256 digest
    ) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(commitments, modelCommitment, digest))) % SNARK_SCALAR_FIELD;
    }

    /// @notice The circuit's public input: sha256(uint32be(weights[i])... || digest || seed || t) >> 3.
    function publicInput(
        uint256[] calldata weights,
        uint256 digest,
        uint256 seed,
        uint256 t
    ) public pure returns (uint256) {
        uint256[] memory words = new uint256[](3);
        (words[0], words[1], words[2]) = (digest, seed, t);
        return _hashPublic(weights, words);
    }

    function _proofBytes() internal pure override returns (uint256) {
        return PROOF_BYTES;
    }

    /// @dev Reads digest and t from `proof`, derives the seed and hashes the public input.
    function _publicInputOf(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) internal pure override returns (uint256) {
        uint256 digest = uint256(bytes32(proof[256:288]));
        uint256 t = uint256(bytes32(proof[288:320]));
        return publicInput(weights, digest, linkSeed(commitments, modelCommitment, digest), t);
    }
}
