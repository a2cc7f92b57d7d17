// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity 0.8.28;

/// @title Payout arithmetic
/// @notice Bit counting over 256-bit membership masks and pro-rata shares that round down.
library PayoutMath {
    /// @dev Number of set bits.
    function popcount(uint256 mask) internal pure returns (uint256 count) {
        while (mask != 0) {
            mask &= mask - 1;
            ++count;
        }
    }

    /// @dev True if bit `index` of `mask` is set.
    function has(uint256 mask, uint256 index) internal pure returns (bool) {
        return (mask >> index) & 1 == 1;
    }

    /// @dev How much a contribution weighs in its round's split: max(value, 0), or 1 for any positive value
    ///      under the equal policy; zero for data owners in `excluded`.
    function weight(int128 value, uint256 excluded, uint256 index, bool equal) internal pure returns (uint256) {
        if (value <= 0 || has(excluded, index)) return 0;
        return equal ? 1 : uint256(uint128(value));
    }
}
