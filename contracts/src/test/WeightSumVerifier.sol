// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../interfaces/IRoundVerifier.sol";
import {RoundProofs} from "../RoundProofs.sol";

/// @title Weight-sum test verifier
/// @notice A small real verifier for tests until the ZK verifier lands: `proof` is abi.encode(uint256 total);
///         accepts iff the weights sum to `total` and every commitment (and the model commitment) is a BN254 G1
///         point, checked with the ecAdd precompile.
contract WeightSumVerifier is IRoundVerifier {
    /// @inheritdoc IRoundVerifier
    function verifyRound(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata proof
    ) external view returns (bool) {
        if (proof.length != 32 || commitments.length != weights.length) return false;
        uint256 total;
        for (uint256 i; i < weights.length; ++i) {
            total += weights[i];
            if (!RoundProofs.wellFormed(commitments[i], 0)) return false;
        }
        return RoundProofs.wellFormed(modelCommitment, 0) && total == abi.decode(proof, (uint256));
    }
}
