// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

import {IRoundVerifier} from "../interfaces/IRoundVerifier.sol";

/// @title Pedersen aggregation verifier (layer 1 of fedmarket's round proofs)
/// @notice Accepts a round when the aggregator's model commitment equals the weighted sum of the data owners'
///         Pedersen commitments: modelCommitment == sum_i weights[i] * commitments[i] on BN254 G1.
/// @dev Pedersen commitments C_i = sum_j u_ij * G_j + rho_i * H are additively homomorphic (Pedersen 1991), so the
///      sum is a commitment to sum_i w_i * u_i with blinding sum_i w_i * rho_i; binding means the aggregator cannot
///      have used any other aggregate. Uses the ecMul (0x07) and ecAdd (0x06) precompiles of EIP-196; both reject
///      coordinates >= p and points off the curve, which this contract reports as malformed input. Points travel
///      as (x, y) words, (0, 0) being the point at infinity (EIP-196's encoding). The `proof` bytes are ignored
///      here: the Groth16 rules check (layer 2) is a separate verifier.
contract PedersenAggregationVerifier is IRoundVerifier {
    /// @notice Base-field modulus p of BN254 (alt_bn128).
    uint256 public constant FIELD_MODULUS =
        21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// @notice Order r of BN254's G1; weights are scalars modulo r and must be given reduced.
    uint256 public constant CURVE_ORDER =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;

    /// @notice `commitments` and `weights` differ in length.
    error LengthMismatch(uint256 commitments, uint256 weights);
    /// @notice Weight `index` is not below the group order r, so it would alias a smaller weight.
    error WeightNotInField(uint256 index, uint256 weight);
    /// @notice Commitment `index` (with a non-zero weight) is not a point of BN254 G1.
    error InvalidCommitment(uint256 index);
    /// @notice Commitment `index` (with a non-zero weight) is the point at infinity, the commitment to the zero
    ///         vector with zero blinding; an honest data owner never posts it, so it must be given weight 0.
    error CommitmentAtInfinity(uint256 index);
    /// @notice The model commitment is not a point of BN254 G1.
    error InvalidModelCommitment();
    /// @notice The model commitment is the point at infinity, which no honest aggregate takes.
    error ModelCommitmentAtInfinity();
    /// @notice Every weight is zero: a round must aggregate at least one update.
    error NoWeightedCommitment();
    /// @notice ecAdd failed on two valid points (cannot happen on a conforming chain).
    error PrecompileFailed();

    /// @inheritdoc IRoundVerifier
    /// @dev Skips zero weights without reading their points, so a malformed commitment of an excluded data owner
    ///      cannot block the round. Reverts on malformed input (see the errors); returns false on a mismatch.
    ///      Gas: about 6.2k per non-zero weight (one ecMul, one ecAdd) plus calldata.
    function verifyRound(
        uint256[2][] calldata commitments,
        uint256[] calldata weights,
        uint256[2] calldata modelCommitment,
        bytes calldata /* proof: layer 2, checked elsewhere */
    ) external view returns (bool) {
        uint256 mx = modelCommitment[0];
        uint256 my = modelCommitment[1];
        if (mx == 0 && my == 0) revert ModelCommitmentAtInfinity();
        if (!_onCurve(mx, my)) revert InvalidModelCommitment();
        (uint256 ax, uint256 ay) = _weightedSum(commitments, weights);
        return ax == mx && ay == my;
    }

    /// @notice sum_i weights[i] * commitments[i], for auditors and diagnostics; (0, 0) if the sum is infinity.
    /// @dev Same validation as verifyRound.
    function aggregateCommitment(uint256[2][] calldata commitments, uint256[] calldata weights)
        external
        view
        returns (uint256[2] memory sum)
    {
        (sum[0], sum[1]) = _weightedSum(commitments, weights);
    }

    /// @dev The weighted sum with the precompiles; reverts with a named error on malformed input.
    function _weightedSum(uint256[2][] calldata commitments, uint256[] calldata weights)
        private
        view
        returns (uint256 ax, uint256 ay)
    {
        uint256 n = commitments.length;
        if (weights.length != n) revert LengthMismatch(n, weights.length);
        bool started;
        for (uint256 i; i < n; ++i) {
            uint256 w = weights[i];
            if (w == 0) continue;
            if (w >= CURVE_ORDER) revert WeightNotInField(i, w);
            uint256 x = commitments[i][0];
            uint256 y = commitments[i][1];
            if (x == 0 && y == 0) revert CommitmentAtInfinity(i);
            (bool ok, uint256 tx, uint256 ty) = _ecMul(x, y, w);
            if (!ok) revert InvalidCommitment(i);
            if (!started) {
                (ax, ay, started) = (tx, ty, true);
            } else {
                (ok, ax, ay) = _ecAdd(ax, ay, tx, ty);
                if (!ok) revert PrecompileFailed();
            }
        }
        if (!started) revert NoWeightedCommitment();
    }

    /// @dev y^2 == x^3 + 3 (mod p) with both coordinates reduced (EIP-196's validity rule, minus infinity).
    function _onCurve(uint256 x, uint256 y) private pure returns (bool) {
        if (x >= FIELD_MODULUS || y >= FIELD_MODULUS) return false;
        uint256 p = FIELD_MODULUS;
        return mulmod(y, y, p) == addmod(mulmod(mulmod(x, x, p), x, p), 3, p);
    }

    /// @dev s * (x, y) with the ecMul precompile (EIP-196, 6000 gas since EIP-1108); ok is false off the curve.
    function _ecMul(uint256 x, uint256 y, uint256 s) private view returns (bool ok, uint256 rx, uint256 ry) {
        assembly ("memory-safe") {
            let buf := mload(0x40)
            mstore(buf, x)
            mstore(add(buf, 0x20), y)
            mstore(add(buf, 0x40), s)
            ok := staticcall(gas(), 0x07, buf, 0x60, buf, 0x40)
            rx := mload(buf)
            ry := mload(add(buf, 0x20))
        }
    }

    /// @dev (x1, y1) + (x2, y2) with the ecAdd precompile (EIP-196, 150 gas since EIP-1108).
    function _ecAdd(uint256 x1, uint256 y1, uint256 x2, uint256 y2)
        private
        view
        returns (bool ok, uint256 rx, uint256 ry)
    {
        assembly ("memory-safe") {
            let buf := mload(0x40)
            mstore(buf, x1)
            mstore(add(buf, 0x20), y1)
            mstore(add(buf, 0x40), x2)
            mstore(add(buf, 0x60), y2)
            ok := staticcall(gas(), 0x06, buf, 0x80, buf, 0x40)
            rx := mload(buf)
            ry := mload(add(buf, 0x20))
        }
    }
}
