// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../../interfaces/IRoundVerifier.sol";
import {Groth16RoundVerifierBase} from "./Groth16RoundVerifierBase.sol";
import {IRulesGroth16Verifier} from "./IRulesGroth16Verifier.sol";

/// @title Round verifier for rule version rffl-v1: the Pedersen check plus the Groth16 rules proof
/// @notice The Groth16 proof shows that the weights follow the task's integer RFFL rules (rule version rffl-v1).
/// @dev `proof` = abi.encode(uint256[8] groth16Proof, uint256 digest): the Poseidon digest of the round's other
///      public values (commitments, reputations, flags, parameters; zk/groth16/rules.py). The public input is
///      sha256(uint32be(w_1) .. uint32be(w_n) || digest) >> 3.
contract RulesRoundVerifier is Groth16RoundVerifierBase {
    /// @notice Bytes of `proof`: eight proof words and the digest.
    uint256 public constant PROOF_BYTES = 9 * 32;

    /// @param pedersen_ the layer-1 verifier (PedersenAggregationVerifier)
    /// @param rules_ the layer-2 Groth16 verifier for this task's rffl-v1 circuit (n owners, d parameters)
    constructor(IRoundVerifier pedersen_, IRulesGroth16Verifier rules_) Groth16RoundVerifierBase(pedersen_, rules_) {}

    /// @notice The circuit's public input: sha256(uint32be(weights[i])... || digest) >> 3 (253 bits, below r).
    function publicInput(uint256[] calldata weights, uint256 digest) public pure returns (uint256) {
        uint256[] memory words = new uint256[](1);
        words[0] = digest;
        return _hashPublic(weights, words);
    }

    function _proofBytes() internal pure override returns (uint256) {
        return PROOF_BYTES;
    }

    function _publicInputOf(uint256[2][] calldata, uint256[] calldata weights, uint256[2] calldata, bytes calldata proof)
        internal
        pure
        override
        returns (uint256)
    {
        return publicInput(weights, uint256(bytes32(proof[256:288])));
    }
}
