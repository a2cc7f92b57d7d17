// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "./interfaces/IRoundVerifier.sol";

/// @title Round proof checks
/// @notice Binds what data owners submit to what the aggregator later claims, and calls the task's verifier.
/// @dev Storage keeps one digest per submission; finalize passes the points in calldata and each is checked
///      against its digest, so a submission costs one storage slot whatever the verifier needs.
library RoundProofs {
    /// @dev Order of BN254's scalar field: Poseidon elements live below it.
    uint256 internal constant SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @dev Gas handed to the verifier; generous for Pedersen (~9k per point) plus a Groth16 check.
    uint256 internal constant VERIFIER_GAS = 8_000_000;

    /// @dev The digest stored for a submission: binds its Pedersen point and its Poseidon element.
    function digest(uint256[2] calldata point, uint256 poseidon) internal pure returns (bytes32 result) {
        // keccak256(abi.encode(point[0], point[1], poseidon)) without a memory allocation
        assembly ("memory-safe") {
            let free := mload(0x40)
            calldatacopy(free, point, 0x40)
            mstore(add(free, 0x40), poseidon)
            result := keccak256(free, 0x60)
        }
    }

    /// @dev True if `point` is on BN254's G1 (or is the point at infinity (0, 0)) and `poseidon` is a field element.
    ///      Uses the ecAdd precompile, which rejects any coordinate pair off the curve: P + O costs 150 gas.
    function wellFormed(uint256[2] calldata point, uint256 poseidon) internal view returns (bool ok) {
        if (poseidon >= SCALAR_FIELD) return false;
        assembly ("memory-safe") {
            let free := mload(0x40)
            calldatacopy(free, point, 0x40)
            mstore(add(free, 0x40), 0)
            mstore(add(free, 0x60), 0)
            ok := staticcall(gas(), 0x06, free, 0x80, free, 0x40)
        }
    }

    /// @dev Asks `verifier` about the round; a revert counts as a rejection.
    function verify(
        address verifier,
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) internal view returns (bool) {
        try IRoundVerifier(verifier).verifyRound{gas: VERIFIER_GAS}(commitments, weights, modelCommitment, proof)
        returns (bool valid) {
            return valid;
        } catch {
            return false;
        }
    }
}
